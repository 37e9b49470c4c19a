"""Damaged databases (kept byte for byte, recovered row by row), the locks, two processes at once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from desktop.core.conversations.migrations import SCHEMA_VERSION
from desktop.core.conversations.recovery import (
    DAMAGED,
    MISSING_WAL,
    NOT_A_DATABASE,
    check_database,
    open_store_with_recovery,
)
from desktop.core.conversations.store import Store, StoreError
from desktop.core.system.locks import FileLock, users_lock_path, window_lock_path

REPO = Path(__file__).resolve().parents[4]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def populate(path: Path, conversations: int = 100, messages: int = 10) -> None:
    s = Store(path)
    s._db.execute("PRAGMA synchronous = OFF")
    for c in range(conversations):
        conv = s.create_conversation(f"Conversation {c}")
        parent = None
        for i in range(messages):
            parent = s.add_message(conv.id, "user" if i % 2 == 0 else "assistant",
                                   f"message {c}-{i} about lighthouses " + "and the sea " * 25, parent_id=parent).id
    s.close()


def leaf_pages(path: Path, table: str) -> tuple[list[int], int]:
    db = sqlite3.connect(str(path))
    try:
        pages = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (table,))]
        return pages, db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cove.sqlite3"
    populate(path)
    return path


def assert_recovered(path: Path, damaged: bytes, kind: str = DAMAGED, wal: bytes | None = None):
    store, report = open_store_with_recovery(path)
    try:
        assert report is not None and report.kind == kind, report
        kept = report.kept[0]
        assert kept.name.startswith("cove.sqlite3.damaged-") and kept.parent == path.parent
        assert kept.read_bytes() == damaged  # the damaged bytes, untouched
        if wal is not None:
            assert Path(f"{kept}-wal").read_bytes() == wal
        assert str(kept) in report.message
        assert store.integrity_check() == "ok"
        store._db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        conv = store.create_conversation("after recovery")  # usable
        store.add_message(conv.id, "user", "still works")
        return report, len(store.list_conversations()) - 1, store.message_count() - 1, len(store.search("lighthouses"))
    finally:
        store.close()


# -- the damage cases -------------------------------------------------------------------------------
def test_a_healthy_database_opens_without_report(db: Path) -> None:
    store, report = open_store_with_recovery(db)
    assert report is None and len(store.list_conversations()) == 100
    store.close()
    assert not [n for n in names(db.parent) if "damaged" in n]


def test_a_missing_database_is_created(tmp_path: Path) -> None:
    store, report = open_store_with_recovery(tmp_path / "new" / "cove.sqlite3")
    assert report is None and store.schema_version == SCHEMA_VERSION
    store.close()


def test_flipped_byte_in_a_message_page(db: Path) -> None:
    pages, size = leaf_pages(db, "messages")
    flip(db, (pages[len(pages) // 2] - 1) * size)  # the page-type byte of a leaf in the middle
    damaged = db.read_bytes()
    report, conversations, messages, found = assert_recovered(db, damaged)
    assert conversations == 100 and 900 <= messages < 1000 and found > 0
    assert report.messages_recovered == messages and report.messages_total == 1000
    assert f"recovered 100 of 100 conversations ({messages} of 1000 messages)" in report.message
    assert report.message.startswith("The conversation database was damaged. Cove kept a copy at ")


def test_flipped_byte_in_a_conversation_page(db: Path) -> None:
    pages, size = leaf_pages(db, "conversations")
    flip(db, (pages[0] - 1) * size + 5)  # the cell-content offset of the page header
    damaged = db.read_bytes()
    report, conversations, messages, _ = assert_recovered(db, damaged)
    assert conversations == 100 and messages == 1000  # lost headers come back as "Recovered conversation"
    assert report.conversations_total == 100


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_file(db: Path, fraction: float) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * fraction)])
    damaged = db.read_bytes()
    report, conversations, messages, _ = assert_recovered(db, damaged)
    assert messages > 0 and report.messages_total >= messages
    assert report.conversations_recovered == conversations


def test_missing_wal_while_shm_exists(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    populate(path, conversations=5, messages=2)  # checkpointed at close
    child = textwrap.dedent(f"""
        import os
        from desktop.core.conversations.store import Store
        s = Store({str(path)!r})
        c = s.create_conversation('late one')
        s.add_message(c.id, 'user', 'written to the log only')
        os._exit(0)  # no close: the log is not copied into the main file
    """)
    subprocess.run([sys.executable, "-c", child], check=True, env=ENV, cwd=REPO)
    assert {"cove.sqlite3-wal", "cove.sqlite3-shm"} <= set(names(tmp_path))
    os.unlink(f"{path}-wal")
    damaged, shm = path.read_bytes(), Path(f"{path}-shm").read_bytes()
    report, conversations, messages, found = assert_recovered(path, damaged, MISSING_WAL)
    assert Path(f"{report.kept[0]}-shm").read_bytes() == shm
    assert (conversations, messages, found) == (5, 10, 10)  # what the main file held
    assert "write-ahead log" in report.message and "5 conversations could be read" in report.message
    store, again = open_store_with_recovery(path)  # fixed for good
    assert again is None
    store.close()


def test_damage_with_a_leftover_wal_keeps_both(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    populate(path, conversations=20, messages=4)
    pages, size = leaf_pages(path, "messages")  # before the crash: reading it later would checkpoint the log
    child = textwrap.dedent(f"""
        import os
        from desktop.core.conversations.store import Store
        s = Store({str(path)!r})
        for i in range(5):
            c = s.create_conversation(f'crash {{i}}')
            s.add_message(c.id, 'user', 'lighthouses after the crash')
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", child], check=True, env=ENV, cwd=REPO)
    flip(path, (pages[1] - 1) * size)
    damaged, wal = path.read_bytes(), Path(f"{path}-wal").read_bytes()
    report, conversations, messages, _ = assert_recovered(path, damaged, wal=wal)
    assert conversations == 25  # the five written only to the log were recovered from the kept log
    assert 0 < messages < 85


@pytest.mark.parametrize("content", [random.Random(3).randbytes(8192), b"hello, I am a text file\n" * 50,
                                     b"SQLite format 3\x00" + bytes(40)])
def test_a_file_that_is_not_a_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cove.sqlite3"
    path.write_bytes(content)
    report, conversations, messages, _ = assert_recovered(
        path, content, NOT_A_DATABASE if not content.startswith(b"SQLite") else DAMAGED)
    assert (conversations, messages) == (0, 0)
    assert "new, empty" in report.message


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    raw = sqlite3.connect(str(path))
    raw.execute("CREATE TABLE future (x)")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        open_store_with_recovery(path)
    assert path.read_bytes() == before
    assert not [n for n in names(tmp_path) if "damaged" in n or n.endswith(("-wal", "-shm"))]
    assert check_database(path) == "newer"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cove.sqlite3").mkdir()
    with pytest.raises(StoreError, match="folder"):
        open_store_with_recovery(tmp_path / "cove.sqlite3")


def test_no_repair_while_another_process_uses_the_database(db: Path) -> None:
    pages, size = leaf_pages(db, "messages")
    flip(db, (pages[3] - 1) * size)
    damaged = db.read_bytes()
    other = FileLock(users_lock_path(db))
    assert other.acquire(shared=True)  # as a running Cove holds it
    try:
        store, report = open_store_with_recovery(db)
        store.close()
    finally:
        other.release()
    assert report is None and db.read_bytes() == damaged
    assert not [n for n in names(db.parent) if "damaged" in n]


def test_random_damage_never_stops_cove(tmp_path: Path) -> None:
    """Random byte changes (and cuts) anywhere in the file: Cove always opens a sound, usable
    database, and whenever it repaired, the kept copy holds exactly the damaged bytes. (Thousands
    of such runs were made while writing this; a sample runs here.)"""
    original = tmp_path / "original.sqlite3"
    populate(original, conversations=30, messages=6)
    data = original.read_bytes()
    rng = random.Random(20240)
    runs, reports = 60, 0
    for run in range(runs):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        path = folder / "cove.sqlite3"
        damaged = bytearray(data)
        if rng.random() < 0.3:
            damaged = damaged[: rng.randrange(len(damaged))]
        for _ in range(rng.randint(1, 6)):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        store, report = open_store_with_recovery(path)
        try:
            assert store.integrity_check() == "ok"
            for conversation in store.list_conversations():
                shown = store.active_path(conversation.id)
                if shown:
                    store.siblings(shown[-1].id)
            store.search("lighthouses sea")
            conv = store.create_conversation("after")
            store.add_message(conv.id, "user", "works")
        finally:
            store.close()
        if report is not None:
            reports += 1
            assert report.kept[0].read_bytes() == bytes(damaged)
    print(f"\n[recovery] {reports} of {runs} random damages needed a repair; the rest were harmless")


def test_a_repair_cut_short_leaves_the_original_in_place_and_starts_over(db: Path, monkeypatch) -> None:
    pages, size = leaf_pages(db, "messages")
    flip(db, (pages[2] - 1) * size)
    damaged = db.read_bytes()
    from desktop.core.conversations import recovery as db_recovery

    real_salvage = db_recovery.salvage

    def dies_half_way(source: Path, wal: Path | None, target: Path):
        Store(target).close()  # a half-built new database, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(db_recovery, "salvage", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        open_store_with_recovery(db)
    assert db.read_bytes() == damaged and (db.parent / "cove.sqlite3.recovering").exists()
    assert not [n for n in names(db.parent) if "damaged" in n]
    monkeypatch.setattr(db_recovery, "salvage", real_salvage)
    report, conversations, messages, _ = assert_recovered(db, damaged)  # the next start does it all
    assert conversations == 100 and "cove.sqlite3.recovering" not in names(db.parent)


def test_a_finished_repair_whose_swap_was_cut_short_is_put_in_place(db: Path) -> None:
    finished = db.parent / "cove.sqlite3.recovering"
    db.rename(db.parent / "cove.sqlite3.damaged-20240101-000000")  # the original went aside ...
    populate(finished, conversations=2, messages=2)  # ... the new file was complete, then a crash
    store, report = open_store_with_recovery(db)
    try:
        assert report is not None and "recovery is now complete" in report.message
        assert "cove.sqlite3.damaged-20240101-000000" in report.message
        assert len(store.list_conversations()) == 2 and not finished.exists()
    finally:
        store.close()


# -- locks ----------------------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from desktop.core.system.locks import FileLock
    lock = FileLock(Path(sys.argv[1]))
    assert lock.acquire(shared=sys.argv[2] == "shared")
    print("HELD", flush=True)
    time.sleep(60)
""")


def hold(path: Path, mode: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdout=subprocess.PIPE,
                             env=ENV, cwd=REPO)
    assert child.stdout.readline().strip() == b"HELD"
    return child


def test_window_lock_is_exclusive_and_dies_with_its_process(tmp_path: Path) -> None:
    path = window_lock_path(tmp_path / "cove.sqlite3")
    child = hold(path, "exclusive")
    try:
        assert not FileLock(path).acquire()
        assert not FileLock(path).acquire(shared=True, timeout_s=0.2)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        lock = FileLock(path)
        assert lock.acquire(timeout_s=5) and lock.held
        lock.release()
        assert not lock.held
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()


def test_users_lock_is_shared_among_users_and_exclusive_for_repair(tmp_path: Path) -> None:
    path = users_lock_path(tmp_path / "cove.sqlite3")
    child = hold(path, "shared")
    try:
        mine = FileLock(path)
        assert mine.acquire(shared=True)
        assert not FileLock(path).acquire()  # repair has to wait for everyone
        mine.release()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    with FileLock(path), pytest.raises(BlockingIOError), FileLock(path):
        pass


# -- two processes at once -------------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    from desktop.core.conversations.recovery import open_store_with_recovery
    store, report = open_store_with_recovery(sys.argv[1])
    tag, count = sys.argv[2], int(sys.argv[3])
    conv = store.create_conversation(f"writer {tag}")
    parent = None
    for i in range(count):
        parent = store.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"{tag} message {i}",
                                   parent_id=parent).id
        if i % 10 == 0:
            store.search(tag)
    store.close()
    print("DONE", flush=True)
""")


def test_two_processes_writing_at_once_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    populate(path, conversations=3, messages=2)
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, "150"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=ENV, cwd=REPO) for tag in ("alpha", "beta", "gamma")]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip() == b"DONE", err.decode()
    store, report = open_store_with_recovery(path)
    try:
        assert report is None and store.integrity_check() == "ok"
        titles = {c.title: c.id for c in store.list_conversations()}
        for tag in ("alpha", "beta", "gamma"):
            path_messages = store.active_path(titles[f"writer {tag}"])
            assert [m.content for m in path_messages] == [f"{tag} message {i}" for i in range(150)]
            assert len(store.search(f"{tag} message", limit=500)) == 150
        assert store.message_count() == 6 + 450
    finally:
        store.close()
