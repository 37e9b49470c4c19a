"""`cove search`, `cove export`, `cove import` as a person runs them: real processes, no model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths, app_paths

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "chatgpt_conversations.json"


def cove(base: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(base), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "cove"


@pytest.fixture
def paths(base: Path) -> AppPaths:
    return app_paths(base).ensure()


def seed(paths: AppPaths) -> dict[str, int]:
    """Two conversations, one with a regenerated answer; returns ids by name."""
    s = Store(paths.database)
    try:
        boats = s.create_conversation("Sailing boats")
        q = s.add_message(boats.id, "user", "How does a keel keep a sailboat upright?")
        s.add_message(boats.id, "assistant", "Ballast low in the keel.", parent_id=q.id)
        a = s.add_message(boats.id, "assistant", "The keel's weight counters the wind's heel.\n\n```text\nsketch\n```",
                          parent_id=q.id)
        food = s.create_conversation("Crêpes")
        s.add_message(food.id, "user", "Recipe for crêpes, please")
        return {"boats": boats.id, "food": food.id, "answer": a.id, "question": q.id}
    finally:
        s.close()


# -- search ---------------------------------------------------------------------------------------
def test_search_prints_id_title_role_and_the_match_in_brackets(base: Path, paths: AppPaths) -> None:
    ids = seed(paths)
    result = cove(base, "search", "keel")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        cid, title, role, snippet = line.split("\t")
        assert (int(cid), title) == (ids["boats"], "Sailing boats") and role in ("user", "assistant")
        assert "[keel]" in snippet.lower()
    crepes = cove(base, "search", "crepe")  # accents folded, last word a prefix
    assert crepes.returncode == 0 and crepes.stdout.startswith(f"{ids['food']}\tCrêpes\tuser\tRecipe for [crêpes]")


def test_search_without_matches_and_with_odd_syntax(base: Path, paths: AppPaths) -> None:
    seed(paths)
    none = cove(base, "search", "zeppelin")
    assert none.returncode == 1 and none.stdout == ""
    assert none.stderr.strip() == "cove: no messages match 'zeppelin'"
    odd = cove(base, "search", '"keel*( -')
    assert odd.returncode == 0, odd.stderr  # punctuation is no FTS syntax here: just the word
    assert len(odd.stdout.splitlines()) == 3
    words = cove(base, "search", "NEAR( keel AND")  # operators are words that must occur too
    assert words.returncode == 1 and "Traceback" not in words.stderr


# -- export ---------------------------------------------------------------------------------------
def test_export_markdown_json_and_round_trip_through_import(base: Path, paths: AppPaths, tmp_path: Path) -> None:
    ids = seed(paths)
    md = tmp_path / "boats.md"
    result = cove(base, "export", str(ids["boats"]), "--format", "md", "--output", str(md))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"cove: exported 1 conversation to {md}"
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Sailing boats\n") and "## Assistant\n\nThe keel's weight" in text
    assert "```text\nsketch\n```" in text and "Ballast" not in text

    everything = tmp_path / "all.json"
    assert cove(base, "export", "--all", "--output", str(everything)).returncode == 0  # format from the suffix
    doc = json.loads(everything.read_text(encoding="utf-8"))
    assert [c["title"] for c in doc["conversations"]] == ["Sailing boats", "Crêpes"]
    assert len(doc["conversations"][0]["messages"]) == 3  # both answers

    other = tmp_path / "other"
    imported = cove(other, "import", str(everything))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported 2 conversations (4 messages) from a Cove export"
    again = tmp_path / "again.json"
    assert cove(other, "export", "--all", "--format", "json", "--output", str(again)).returncode == 0
    assert again.read_bytes() == everything.read_bytes()

    stdout = cove(base, "export", str(ids["food"]), "--format", "json")
    assert stdout.returncode == 0 and json.loads(stdout.stdout)["conversations"][0]["title"] == "Crêpes"


@pytest.mark.parametrize("args, code, message", [
    (["export", "999", "--output", "x.md"], 1, "cove: there is no conversation 999"),
    (["export", "--format", "md"], 2, "cove: give either a conversation id or --all"),
    (["export", "1", "--all"], 2, "cove: give either a conversation id or --all"),
    (["export", "--all", "--output", "/nonexistent/folder/x.md"], 1,
     "cove: cannot write /nonexistent/folder/x.md: the folder /nonexistent/folder does not exist"),
])
def test_export_errors_are_one_line(base: Path, paths: AppPaths, tmp_path: Path, args: list[str], code: int,
                                    message: str) -> None:
    seed(paths)
    done = cove(base, *[a if a != "x.md" else str(tmp_path / "x.md") for a in args])
    assert done.returncode == code
    assert done.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "x.md").exists()


# -- import ---------------------------------------------------------------------------------------
def test_import_chatgpt_export(base: Path, paths: AppPaths) -> None:
    result = cove(base, "import", str(FIXTURE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("imported 3 conversations (11 messages) from a ChatGPT export; "
                                     "4 messages left out (tool calls, hidden context, empty)")  # thoughts kept
    found = cove(base, "search", "itemgetter")
    assert found.returncode == 0 and "Sorting a list in Python\tassistant" in found.stdout


@pytest.mark.parametrize("content, needle", [
    ("{broken", "not valid JSON"),
    ('{"format": "cove-conversations", "version": 7, "conversations": []}', "newer Cove"),
    ('{"what": 1}', "neither a Cove export"),
])
def test_import_refuses_bad_files_and_imports_nothing(base: Path, paths: AppPaths, tmp_path: Path,
                                                      content: str, needle: str) -> None:
    seed(paths)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    result = cove(base, "import", str(bad))
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("cove: bad.json: ") and needle in line and "Nothing was imported" in line
    s = Store(paths.database)
    assert len(s.list_conversations()) == 2
    s.close()
    missing = cove(base, "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and missing.stderr.strip() == f"cove: {tmp_path / 'nope.json'}: no such file"


# -- damaged database --------------------------------------------------------------------------------
def test_a_damaged_database_is_recovered_and_said_once(base: Path, paths: AppPaths) -> None:
    seed(paths)
    db = sqlite3.connect(str(paths.database))
    [(page,)] = db.execute("SELECT pageno FROM dbstat WHERE name = 'conversations_by_update'").fetchall()
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(paths.database.read_bytes())
    data[(page - 1) * size] = 0x00  # an index page with an impossible type
    paths.database.write_bytes(bytes(data))
    result = cove(base, "search", "keel")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "damaged" in line]
    assert len(notes) == 1 and "recovered all 2 conversations (4 messages)" in notes[0]
    kept = [p for p in paths.data_dir.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(data)
    assert len(result.stdout.splitlines()) == 3
    second = cove(base, "search", "keel")
    assert "damaged" not in second.stderr  # once: the new database is sound
