"""``cove models search`` and ``cove models files`` against the fake Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.__main__ import main
from tests.conftest import REPO
from tests.helpers.fakehub import HOSTILE_NAMES, SMOL_FILE, SMOL_REPO, FakeHub


def cove(capsys: pytest.CaptureFixture, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--basedir", str(tmp_path / "cove"), "models", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_search_prints_a_table_and_pages(fake_hub: FakeHub, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    for i in range(3):
        fake_hub.add_repo(f"org/smol-extra-{i}-GGUF", {"m-Q8_0.gguf": b"GGUF"}, downloads=i, likes=1000 + i)
    code, out, err = cove(capsys, tmp_path, "search", "smol")
    lines = out.splitlines()
    assert code == 0 and err == "" and lines[0].split() == ["REPOSITORY", "DOWNLOADS", "LIKES", "UPDATED", "LICENSE",
                                                            "ACCESS"]
    assert lines[1].split()[:3] == [SMOL_REPO, "50,000", "120"]
    code, out, _ = cove(capsys, tmp_path, "search", "smol", "--sort", "likes", "--limit", "2", "--page", "2")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["org/smol-extra-0-GGUF", SMOL_REPO, "(more:"]
    code, out, _ = cove(capsys, tmp_path, "search", "smol", "--json")
    assert json.loads(out)[0] == {"repo_id": SMOL_REPO, "downloads": 50_000, "likes": 120,
                                  "last_modified": "2025-01-01T00:00:00.000Z", "gated": False, "license": "apache-2.0"}
    assert cove(capsys, tmp_path, "search", "no such model")[1] == "No GGUF repositories match 'no such model'.\n"


def test_files_lists_models_with_fit_verdicts(fake_hub: FakeHub, capsys: pytest.CaptureFixture,
                                              tmp_path: Path) -> None:
    code, out, err = cove(capsys, tmp_path, "files", SMOL_REPO, "--ctx", "2048")
    assert code == 0 and err == ""
    header, row = out.splitlines()[1:3]
    assert header.split() == ["MODEL", "QUANT", "SIZE", "NEEDS", "FIT", "(2,048", "tokens)"]
    assert row.startswith(SMOL_FILE) and "Q4_1" in row and "98.4 MB" in row and row.endswith("runs well")
    code, out, _ = cove(capsys, tmp_path, "files", SMOL_REPO, "--json", "--ctx", "2048")
    [model] = json.loads(out)["models"]
    assert model["fit"] == "runs well" and model["n_ctx"] == 2048 and model["parts"][0]["sha256"]
    code, out, _ = cove(capsys, tmp_path, "files", SMOL_REPO, "--no-fit")
    assert out.splitlines()[2].split()[-1] == "-"


def test_files_refuses_hostile_names_and_reports_gated_files(fake_hub: FakeHub, capsys: pytest.CaptureFixture,
                                                             tmp_path: Path, starter_model: Path) -> None:
    fake_hub.add_repo("evil/repo", {**{n: b"GGUF" for n in HOSTILE_NAMES}, "ok-Q4_1.gguf": starter_model},
                      gated=True)
    code, out, err = cove(capsys, tmp_path, "files", "evil/repo")
    assert code == 0 and "7 file name(s) in evil/repo were refused" in err
    assert "token needed" in out and "gated: it needs a Hugging Face token" in out
    assert not any(name in out for name in HOSTILE_NAMES)


@pytest.mark.parametrize(("switch", "message"), [
    ({"status": 401}, "wants a token"), ({"status": 403}, "refused access"), ({"status": 429}, "limiting requests"),
    ({"status": 500}, "server error (500)"), ({"status": 404}, "could not find"),
])
def test_failures_exit_1_with_one_line(fake_hub: FakeHub, capsys: pytest.CaptureFixture, tmp_path: Path,
                                       switch: dict, message: str) -> None:
    fake_hub.misbehave(**switch)
    for argv in (["search", "smol"], ["files", SMOL_REPO]):
        code, out, err = cove(capsys, tmp_path, *argv)
        assert code == 1 and out == "" and err.startswith("cove: ") and message in err and err.count("\n") == 1


def test_a_fresh_process_follows_hf_endpoint(fake_hub: FakeHub, tmp_path: Path) -> None:
    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_secret"}
    fake_hub.add_token("hf_secret")
    done = subprocess.run([sys.executable, "-m", "desktop", "--basedir", str(tmp_path), "models", "search", "smol"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and SMOL_REPO in done.stdout
    fake_hub.settle()
    assert fake_hub.requests[-1].path == "/api/models" and fake_hub.request_headers[-1]["Authorization"] == \
        "Bearer hf_secret"
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    done = subprocess.run([sys.executable, "-m", "desktop", "--basedir", str(tmp_path), "models", "files", SMOL_REPO],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "cove: Cove cannot reach the Hugging Face Hub: this computer seems to be offline.\n"
