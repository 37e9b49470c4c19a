"""The conversation database: conversations, the message tree, durability and migrations."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from desktop.core.conversations.migrations import SCHEMA_VERSION
from desktop.core.conversations.store import (
    COMPLETE,
    FAILED,
    STOPPED,
    STREAMING,
    Store,
    StoreError,
    suggest_title,
)

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "cove.sqlite3")
    yield s
    s.close()


# -- conversations ------------------------------------------------------------------------------
def test_create_and_list_conversations_most_recent_first(store: Store) -> None:
    first = store.create_conversation("First", model="m1")
    second = store.create_conversation("Second")
    listed = store.list_conversations()
    assert [c.id for c in listed] == [second.id, first.id]
    assert listed[1].title == "First" and listed[1].model == "m1"
    assert listed[0].leaf_id is None
    # A message makes a conversation the most recently updated one.
    time.sleep(0.01)
    store.add_message(first.id, "user", "hello")
    assert store.list_conversations()[0].id == first.id


def test_rename_normalises_whitespace_and_refuses_blank(store: Store) -> None:
    conv = store.create_conversation("Old")
    store.rename_conversation(conv.id, "  New \n  title ")
    assert store.get_conversation(conv.id).title == "New title"
    for blank in ("", "   ", "\n\t"):
        with pytest.raises(ValueError):
            store.rename_conversation(conv.id, blank)
    assert store.get_conversation(conv.id).title == "New title"


def test_delete_conversation_removes_its_messages_only(store: Store) -> None:
    doomed = store.create_conversation("Doomed")
    kept = store.create_conversation("Kept")
    q = store.add_message(doomed.id, "user", "question")
    store.add_message(doomed.id, "assistant", "answer", parent_id=q.id)
    other = store.add_message(kept.id, "user", "stays")
    assert store.message_count() == 3

    store.delete_conversation(doomed.id)

    assert store.get_conversation(doomed.id) is None
    assert [c.id for c in store.list_conversations()] == [kept.id]
    assert store.message_count() == 1
    assert store.get_message(q.id) is None
    assert store.get_message(other.id).content == "stays"


def test_set_conversation_model(store: Store) -> None:
    conv = store.create_conversation()
    store.set_conversation_model(conv.id, "/models/x.gguf")
    assert store.get_conversation(conv.id).model == "/models/x.gguf"


# -- messages -----------------------------------------------------------------------------------
def test_add_message_is_committed_immediately(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    s = Store(path)
    try:
        conv = s.create_conversation("Durable")
        msg = s.add_message(conv.id, "user", "visible to others right away")
        other = sqlite3.connect(str(path))
        try:
            row = other.execute("SELECT content, status FROM messages WHERE id = ?", (msg.id,)).fetchone()
            leaf = other.execute("SELECT leaf_id FROM conversations WHERE id = ?", (conv.id,)).fetchone()
        finally:
            other.close()
        assert row == ("visible to others right away", COMPLETE)
        assert leaf == (msg.id,)
    finally:
        s.close()


def test_add_message_rejects_unknown_status_and_role(store: Store) -> None:
    conv = store.create_conversation()
    with pytest.raises(ValueError):
        store.add_message(conv.id, "user", "x", status="bogus")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_message(conv.id, "robot", "x")
    assert store.message_count() == 0


def test_active_path_follows_leaf_and_regenerated_sibling(store: Store) -> None:
    conv = store.create_conversation()
    sys_msg = store.add_message(conv.id, "system", "be brief")
    q1 = store.add_message(conv.id, "user", "q1", parent_id=sys_msg.id)
    a1 = store.add_message(conv.id, "assistant", "a1", parent_id=q1.id)
    q2 = store.add_message(conv.id, "user", "q2", parent_id=a1.id)
    a2_old = store.add_message(conv.id, "assistant", "a2 first try", parent_id=q2.id)
    assert [m.id for m in store.active_path(conv.id)] == [sys_msg.id, q1.id, a1.id, q2.id, a2_old.id]

    # Regenerate: a sibling of the old answer becomes the shown branch.
    a2_new = store.add_message(conv.id, "assistant", "a2 second try", parent_id=q2.id)
    path = store.active_path(conv.id)
    assert [m.content for m in path] == ["be brief", "q1", "a1", "q2", "a2 second try"]
    assert store.get_conversation(conv.id).leaf_id == a2_new.id

    # The old answer is still there and can be shown again.
    assert store.get_message(a2_old.id).content == "a2 first try"
    store.set_leaf(conv.id, a2_old.id)
    assert [m.id for m in store.active_path(conv.id)][-1] == a2_old.id
    assert a2_new.id not in [m.id for m in store.active_path(conv.id)]


def test_active_path_of_empty_conversation_is_empty(store: Store) -> None:
    conv = store.create_conversation()
    assert store.active_path(conv.id) == []


def test_update_message_content_status_and_stats(store: Store) -> None:
    conv = store.create_conversation()
    q = store.add_message(conv.id, "user", "question")
    a = store.add_message(conv.id, "assistant", "", parent_id=q.id, status=STREAMING)
    assert store.get_message(a.id).incomplete

    store.update_message(a.id, "partial")
    got = store.get_message(a.id)
    assert (got.content, got.status, got.stats) == ("partial", STREAMING, {})

    stats = {"completion_tokens": 12, "decode_tokens_per_s": 33.5}
    store.update_message(a.id, "partial and done", status=COMPLETE, stats=stats)
    got = store.get_message(a.id)
    assert (got.content, got.status, got.stats) == ("partial and done", COMPLETE, stats)
    assert not got.incomplete

    # Status and stats left as they were when not given.
    store.update_message(a.id, "edited")
    got = store.get_message(a.id)
    assert (got.content, got.status, got.stats) == ("edited", COMPLETE, stats)

    for status in (STOPPED, FAILED):
        store.update_message(a.id, "x", status=status)
        assert store.get_message(a.id).incomplete
    with pytest.raises(ValueError):
        store.update_message(a.id, "x", status="nope")


# -- pragmas and schema -------------------------------------------------------------------------
def test_wal_and_synchronous_full(store: Store) -> None:
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_schema_version_after_open(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION >= 1
    s.close()
    raw = sqlite3.connect(str(path))
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        raw.close()
    # Reopening does not migrate again (the tables already exist).
    s = Store(path)
    assert s.schema_version == SCHEMA_VERSION
    s.close()


def test_empty_version_zero_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(str(path))
    raw.execute("PRAGMA user_version = 0")
    raw.commit()
    raw.close()
    s = Store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION
        conv = s.create_conversation("after migration")
        s.add_message(conv.id, "user", "works")
        assert [m.content for m in s.active_path(conv.id)] == ["works"]
        assert s.integrity_check() == "ok"
    finally:
        s.close()


def test_future_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    raw = sqlite3.connect(str(path))
    raw.execute("CREATE TABLE something (x)")
    raw.execute("INSERT INTO something VALUES (42)")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.commit()
    raw.close()
    before = path.read_bytes()

    with pytest.raises(StoreError, match="newer"):
        Store(path)

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.sqlite3"]  # no -wal / -shm


def test_random_bytes_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(random.Random(7).randbytes(8192))
    before = path.read_bytes()

    with pytest.raises(StoreError) as err:
        Store(path)

    assert str(err.value)
    assert "cannot be opened" in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.sqlite3"]


def test_folder_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(StoreError, match="folder"):
        Store(folder)


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    s = Store(tmp_path / "deep" / "er" / "cove.sqlite3")
    assert s.integrity_check() == "ok"
    s.close()


# -- titles -------------------------------------------------------------------------------------
def test_suggest_title() -> None:
    assert suggest_title("  How do\n I   sort a list? ") == "How do I sort a list?"
    assert suggest_title("") == "New chat"
    assert suggest_title(" \n ") == "New chat"
    long = "Explain the difference between processes and threads in operating systems please"
    title = suggest_title(long, limit=30)
    assert title.endswith("…")
    assert "\n" not in title
    assert len(title) <= 31  # limit plus the ellipsis
    assert long.startswith(title[:-1])
    assert not title[:-1].endswith(" ")  # cut at a word boundary
    # One enormous word is cut mid-word rather than lost.
    assert suggest_title("x" * 100, limit=10) == "x" * 10 + "…"


# -- crash durability ---------------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    from desktop.core.conversations.store import Store, STREAMING
    s = Store(sys.argv[1])
    conv = s.create_conversation("crash test")
    q = s.add_message(conv.id, "user", "the question")
    a = s.add_message(conv.id, "assistant", "", parent_id=q.id, status=STREAMING)
    text = ""
    i = 0
    while True:
        i += 1
        text += f"token{i} "
        s.update_message(a.id, text)
        if i == 3:
            print("READY", flush=True)
    """
)


def test_kill_dash_nine_during_streaming_leaves_a_consistent_database(tmp_path: Path) -> None:
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    deadline = time.monotonic() + 18
    runs = 0
    for run in range(10):
        if time.monotonic() > deadline:
            break
        path = tmp_path / f"crash{run}.sqlite3"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, env=env, cwd=str(REPO))
        try:
            assert child.stdout.readline().strip() == b"READY"
            time.sleep(rng.uniform(0.02, 1.0))  # a random kill point within ~1 s
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        runs += 1

        s = Store(path)
        try:
            assert s.integrity_check() == "ok"
            conv = s.list_conversations()[0]
            path_msgs = s.active_path(conv.id)
            assert [m.role for m in path_msgs] == ["user", "assistant"]
            user, answer = path_msgs
            assert user.content == "the question" and user.status == COMPLETE
            assert answer.status == STREAMING and answer.incomplete
            assert answer.content.startswith("token1 token2 token3 ")
        finally:
            s.close()
    assert runs >= 5
