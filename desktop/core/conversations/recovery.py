"""Opening the conversation database when it may be damaged: keep the original, recover the rest.

:func:`open_store_with_recovery` is how the app and the command line open the database. When this
process is the only one using it (the users lock of :mod:`desktop.core.system.locks` can be taken
exclusively) it first checks the file without writing to it (a read-only SQLite connection,
``PRAGMA integrity_check``: ``quick_check`` is twice as fast but misses a flipped byte that breaks a
CHECK constraint or an index; the full check costs about 150 ms for 100,000 messages, on the store
thread, while the window is already up). Three kinds of damage are handled:

* **not a database** (no SQLite header: random bytes, a file cut inside its header),
* **damaged** (a flipped byte in a page, a truncated file, anything ``integrity_check`` or
  opening rejects),
* **missing write-ahead log** (``cove.sqlite3-shm`` present, ``cove.sqlite3-wal`` gone: the
  changes not yet copied into the main file are lost, and nothing can tell how many).

What happens to the original, precisely: **its files are only ever read (a read-only SQLite
connection for the check, plain file copies for the repair), then renamed aside; Cove continues
with a new file.** The new database is first built completely as ``cove.sqlite3.recovering``:
either a byte copy of the original (missing log, when SQLite finds the copy sound) or a fresh
database filled row by row from a scratch copy of the original files (salvage,
:mod:`desktop.core.conversations.salvage`), whose search index is rebuilt and whose ``integrity_check`` must
pass. Then ``cove.sqlite3`` is renamed to ``cove.sqlite3.damaged-<YYYYmmdd-HHMMSS>`` (its ``-wal``
likewise; its ``-shm`` is kept with the bytes it had before the check) and the new file renamed
into place. A crash in between leaves the untouched original (the repair starts over) or, once the
original is aside, the finished new file (put in place at the next start). A database written by
a newer Cove is refused and left untouched, as :class:`Store` does.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from desktop.core.conversations.migrations import SCHEMA_VERSION
from desktop.core.conversations.salvage import SalvageResult, reference_objects, salvage
from desktop.core.conversations.store import READ_ONLY_REASON, ROLES, Store, StoreError, decode_text
from desktop.core.system.locks import FileLock, users_lock_path

SQLITE_MAGIC = b"SQLite format 3\x00"
NOT_A_DATABASE = "not_a_database"
DAMAGED = "damaged"
MISSING_WAL = "missing_wal"
USERS_WAIT_S = 60.0  # how long to wait while another Cove process checks or repairs the file


@dataclass
class RecoveryReport:
    """What was wrong with the database and what Cove did about it; ``message`` is for a person."""

    kind: str
    message: str
    problem: str
    kept: list[Path] = field(default_factory=list)  # the original files, renamed aside
    conversations_recovered: int = 0
    conversations_total: int = 0
    messages_recovered: int = 0
    messages_total: int = 0


def open_store_with_recovery(path: Path | str, *, read_only: bool = False,
                             read_only_reason: str = READ_ONLY_REASON) -> tuple[Store, RecoveryReport | None]:
    """Open the database at ``path``, repairing it first if it is damaged and nobody else uses it.

    Returns the store and a report (None when nothing was wrong). ``read_only`` opens with
    SQLite's ``mode=ro`` and never repairs (another Cove owns the file). The returned store holds
    the users lock shared until it is closed. Raises :class:`StoreError` for what cannot be
    opened or repaired (a folder, a newer schema, files that cannot be moved aside).
    """
    path = Path(path)
    if path.is_dir():
        return Store(path), None  # raises the folder message
    users = FileLock(users_lock_path(path))
    report = None
    if not read_only and users.acquire(timeout_s=0.0):  # nobody else has the database open
        try:
            report = check_and_repair(path)
        except BaseException:
            users.release()
            raise
        held = users.acquire(shared=True)
    else:
        held = users.acquire(shared=True, timeout_s=USERS_WAIT_S)
    if not held:
        raise StoreError("Another Cove process is checking or repairing the conversation database. "
                         "Try again in a minute.")
    try:
        store = Store(path, read_only=read_only, read_only_reason=read_only_reason)
    except BaseException:
        users.release()
        raise
    store.on_close.append(users.release)
    return store, report


def check_and_repair(path: Path) -> RecoveryReport | None:
    """Check the database at ``path`` and repair it if needed (the caller makes sure no other
    process uses it). None when it is sound, missing, or from a newer Cove.

    The new database is built completely at ``<name>.recovering`` first; only then is the original
    renamed aside and the new one renamed into place, so a crash during a repair leaves either the
    untouched original (the repair starts over) or a finished new file (put in place next time)."""
    building = _companion(path, RECOVERING)
    if not path.exists():
        return _finish_interrupted(path, building) if building.is_file() else None
    if not path.is_file():
        return None
    _remove_with_companions(building)  # half-built by an interrupted repair: start over
    wal, shm = _companion(path, "-wal"), _companion(path, "-shm")
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if header and header != SQLITE_MAGIC:
        return _not_a_database(path, building)
    if shm.exists() and not wal.exists():
        return _missing_wal(path, building)
    existed = {wal: wal.exists(), shm: shm.exists()}
    shm_bytes = shm.read_bytes() if existed[shm] else None
    problem = check_database(path)
    if problem in (None, "newer"):
        return None
    for companion, was_there in existed.items():  # the check's own -wal/-shm are not the original's
        if not was_there:
            companion.unlink(missing_ok=True)
    result = salvage(path, wal if wal.exists() else None, building)
    return _report(DAMAGED, problem, _swap(path, building, shm_bytes), result)


def check_database(path: Path) -> str | None:
    """The verdict on ``path``, read without writing to it: None when sound, ``"newer"`` for a newer
    schema, else the problem. Beyond SQLite's ``integrity_check``: the definitions of Cove's tables,
    indexes and triggers must be exactly those of the file's schema version, and the role CHECK
    (which a read-only connection's integrity_check skips) must hold."""
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        db.text_factory = decode_text
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            return "newer"
        if version < 0:
            return f"the schema version ({version}) is damaged"
        rows = [str(r[0]) for r in db.execute("PRAGMA integrity_check(20)")]
        if rows != ["ok"]:
            return "; ".join(rows)
        expected = reference_objects()[version]
        known = {name for objects in reference_objects() for name in objects}
        present = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master") if name in known}
        if present != expected:  # damaged schema text can still parse, yet mean something else
            return "the database's table definitions are damaged"
        tables = set(present)
        if "messages_fts" in tables:  # the search index can be opened (its configuration is readable)
            db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH '\"cove\"' LIMIT 1").fetchall()
        # A read-only connection's integrity_check skips CHECK constraints: the one Cove has, by hand.
        roles = ", ".join(f"'{role}'" for role in (ROLES if version >= 4 else ROLES[:3]))
        if "messages" in tables and db.execute(
                f"SELECT 1 FROM messages WHERE role NOT IN ({roles}) LIMIT 1").fetchone():
            return "CHECK constraint failed in messages"
        return None
    except (sqlite3.Error, ValueError) as exc:  # ValueError: text that is not UTF-8 in the schema
        return str(exc) or type(exc).__name__
    finally:
        db.close()


# -- the cases ------------------------------------------------------------------------------------
RECOVERING = ".recovering"  # suffix of the new database while a repair builds it


def _not_a_database(path: Path, building: Path) -> RecoveryReport:
    shm = _companion(path, "-shm")
    Store(building).close()
    kept = _swap(path, building, shm.read_bytes() if shm.exists() else None)
    message = (f"The conversation database {path.name} was not a database file (damaged or replaced). "
               f"Cove kept it as {kept[0]} and started a new, empty conversation database.")
    return RecoveryReport(NOT_A_DATABASE, message, "not an SQLite database", kept)


def _missing_wal(path: Path, building: Path) -> RecoveryReport:
    shm_bytes = _companion(path, "-shm").read_bytes()
    shutil.copyfile(path, building)  # the original's bytes in a new file; the original is only read
    problem = check_database(building)
    count = _count_conversations(building)
    for leftover in (_companion(building, "-wal"), _companion(building, "-shm")):  # the check's own
        leftover.unlink(missing_ok=True)
    if problem is None:
        kept = _swap(path, building, shm_bytes)
        message = (f"The conversation database's write-ahead log ({path.name}-wal) was missing, so the "
                   f"most recent changes could not be read. Cove kept a copy at {kept[0]}; "
                   f"{count} conversation{'s' if count != 1 else ''} could be read.")
        return RecoveryReport(MISSING_WAL, message, "missing write-ahead log", kept, count, count)
    _remove_with_companions(building)
    result = salvage(path, None, building)
    return _report(DAMAGED, f"missing write-ahead log; {problem}", _swap(path, building, shm_bytes), result)


def _finish_interrupted(path: Path, building: Path) -> RecoveryReport:
    """A repair was interrupted after the original was set aside: put the finished new file in place."""
    building.rename(path)
    kept = [p for p in sorted(path.parent.glob(f"{path.name}.damaged-*"), key=lambda p: p.stat().st_mtime)
            if not p.name.endswith(("-wal", "-shm"))][-1:]
    where = f" Cove kept a copy at {kept[0]}." if kept else ""
    message = ("The conversation database was damaged and Cove was closed while recovering it; "
               f"the recovery is now complete.{where}")
    return RecoveryReport(DAMAGED, message, "interrupted recovery", kept)


def _report(kind: str, problem: str, kept: list[Path], r: SalvageResult) -> RecoveryReport:
    if r.conversations_total == 0 and r.messages_total == 0:
        what = "could not read any conversation from it; it started a new, empty conversation database"
    elif r.conversations_recovered == r.conversations_total and r.messages_recovered == r.messages_total:
        what = (f"recovered all {r.conversations_total} conversation{'s' if r.conversations_total != 1 else ''} "
                f"({r.messages_recovered} messages)")
    else:
        what = (f"recovered {r.conversations_recovered} of {r.conversations_total} conversations "
                f"({r.messages_recovered} of {r.messages_total} messages)")
    message = f"The conversation database was damaged. Cove kept a copy at {kept[0]} and {what}."
    return RecoveryReport(kind, message, problem, kept, r.conversations_recovered, r.conversations_total,
                          r.messages_recovered, r.messages_total)


# -- files ---------------------------------------------------------------------------------------
def _companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _swap(path: Path, building: Path, shm_bytes: bytes | None) -> list[Path]:
    """Rename the original database (and its -wal) to ``<name>.damaged-<time>``, keep its -shm as
    it was found, then rename the finished new database into place. Returns the kept paths, the
    database first."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept_db = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(_companion(kept_db, s).exists() for s in ("", "-wal", "-shm")):
        n += 1
        kept_db = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    kept = [kept_db]
    try:
        path.rename(kept_db)
        wal = _companion(path, "-wal")
        if wal.exists():
            try:
                wal.rename(_companion(kept_db, "-wal"))
            except OSError:
                kept_db.rename(path)  # put things back as they were
                raise
            kept.append(_companion(kept_db, "-wal"))
    except OSError as exc:
        _remove_with_companions(building)
        raise StoreError(f"The conversation database {path} is damaged and could not be set aside for "
                         f"recovery ({exc}). Nothing was changed.") from exc
    if shm_bytes is not None:
        _companion(kept_db, "-shm").write_bytes(shm_bytes)
        kept.append(_companion(kept_db, "-shm"))
    _companion(path, "-shm").unlink(missing_ok=True)
    building.rename(path)
    _sync_folder(path.parent)
    return kept


def _remove_with_companions(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        _companion(path, suffix).unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make the renames durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _count_conversations(path: Path) -> int:
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM conversations").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0
