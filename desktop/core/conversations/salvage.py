"""Salvage: copy what can still be read from a damaged conversation database into a new one.

Works on a scratch copy of the kept files (so the kept copy is never opened by SQLite), reads each
table in rowid order, stepping over damaged stretches (a damaged page loses only the rows on it),
checks every value's type, and writes the rows into a freshly created database in one transaction:
messages whose parent was lost become first messages of their branch, messages whose
conversation row was lost get a "Recovered conversation" header, a shown-branch tip that was
lost moves to the newest message. The search index is rebuilt and ``integrity_check`` must pass.
The totals also count ids seen only in the tables' indexes, so "97 of 100" is honest.
Reads catch ``ValueError`` besides SQLite's errors: damaged schema text can hold names that are not
UTF-8, which Python's sqlite3 cannot decode.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from desktop.core.conversations.migrations import MIGRATIONS
from desktop.core.conversations.store import COMPLETE, ROLES, STATUSES, Store, StoreError, decode_text

LINEAR_MARGIN = 1024  # rowids past the highest known one that are still tried one by one
LINEAR_LIMIT = 20_000  # at most this many one-by-one tries per damaged stretch (known rowids may be garbage)
BUDGET_S = 60.0  # reading stops after this long; what was read by then is kept
GAP = 1_000_000  # and how far beyond that probes (at doubling distances) look when the table's end is unknown


@dataclass(frozen=True)
class SalvageResult:
    """How much of the damaged database made it into the new one."""

    conversations_recovered: int
    conversations_total: int
    messages_recovered: int
    messages_total: int
    presets_recovered: int


def salvage(kept_db: Path, kept_wal: Path | None, target: Path) -> SalvageResult:
    """Fill a new database at ``target`` (which must not exist) from the kept damaged files."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.salvage-", dir=target.parent))
    try:
        source = scratch / "damaged.sqlite3"
        shutil.copyfile(kept_db, source)
        _loosen_header(source)
        _restore_schema_text(source)
        if kept_wal is not None:
            shutil.copyfile(kept_wal, scratch / "damaged.sqlite3-wal")
        tables, known_conversations, known_messages = _read_everything(source)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Store(target).close()  # the current schema
    conversations, messages, presets = _write(target, tables)
    known_conversations |= {int(r["id"]) for r in tables.get("conversations", [])}
    known_messages |= {int(r["id"]) for r in tables.get("messages", [])}
    known_conversations |= {int(r["conversation_id"]) for r in tables.get("messages", [])
                            if isinstance(r["conversation_id"], int)}
    return SalvageResult(conversations, max(conversations, len(known_conversations)), messages,
                         max(messages, len(known_messages)), presets)


# -- reading -------------------------------------------------------------------------------------
TABLES = ("conversations", "messages", "presets")


@lru_cache(maxsize=1)
def reference_objects() -> tuple[dict[str, str | None], ...]:
    """For each schema version (the index), the name and CREATE text of every object Cove's
    migrations make, except the full-text index's shadow tables (their text is SQLite's and may
    differ between SQLite versions)."""
    versions: list[dict[str, str | None]] = [{}]
    db = sqlite3.connect(":memory:")
    try:
        for migrate in MIGRATIONS:
            migrate(db)
            versions.append({name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")
                             if not name.startswith(("messages_fts_", "reasoning_fts_"))})
    finally:
        db.close()
    return tuple(versions)


@lru_cache(maxsize=1)
def reference_schema() -> dict[str, dict[int, tuple[list[str], str]]]:
    """Each table's column names and CREATE text by column count, for every schema version."""
    layouts: dict[str, dict[int, tuple[list[str], str]]] = {}
    db = sqlite3.connect(":memory:")
    try:
        for migrate in MIGRATIONS:
            migrate(db)
            for name in TABLES:
                columns = [str(r[1]) for r in db.execute(f"PRAGMA table_info({name})")]
                if columns:
                    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
                    layouts.setdefault(name, {})[len(columns)] = (columns, sql)
    finally:
        db.close()
    return layouts


def _restore_schema_text(scratch: Path) -> None:
    """Where damage garbled a table's CREATE text (a column name no longer UTF-8 or no longer
    ours) but the column count still matches a Cove schema, put the original text back (in the
    scratch copy) so that the rows can be read by name."""
    try:
        db = sqlite3.connect(str(scratch), isolation_level=None)
    except sqlite3.Error:
        return
    try:
        db.text_factory = bytes
        layouts = reference_schema()
        for name in TABLES:
            try:
                columns = [r[1] for r in db.execute(f"PRAGMA table_info({name})")]
            except (sqlite3.Error, ValueError):
                continue
            wanted = layouts[name].get(len(columns))
            if wanted is None or [c.decode("utf-8", "replace") for c in columns] == wanted[0]:
                continue
            db.execute("PRAGMA writable_schema = ON")
            db.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (wanted[1], name))
            db.execute("PRAGMA writable_schema = OFF")
    except (sqlite3.Error, ValueError):
        pass
    finally:
        db.close()


def _loosen_header(scratch: Path) -> None:
    """Let SQLite read a cut-short copy: pad it to whole pages and zero the header's page count
    (SQLite then sizes the database from the file; with the count it refuses the whole file)."""
    with scratch.open("r+b") as handle:
        header = handle.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
            return
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        if page_size < 512 or page_size & (page_size - 1):
            return
        size = handle.seek(0, 2)
        if size % page_size:
            handle.write(bytes(page_size - size % page_size))
        handle.seek(28)
        handle.write(bytes(4))


def _read_everything(source: Path) -> tuple[dict[str, list[dict[str, Any]]], set[int], set[int]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    try:
        db = sqlite3.connect(str(source), isolation_level=None)
    except (sqlite3.Error, ValueError):
        return tables, set(), set()
    try:
        db.text_factory = decode_text
        db.execute("PRAGMA cell_size_check = ON")  # notice more damage instead of reading garbage
        conversations = _ids(db, "SELECT id FROM conversations INDEXED BY conversations_by_update")
        conversations |= _ids(db, "SELECT conversation_id FROM messages INDEXED BY messages_by_conversation")
        messages = _ids(db, "SELECT id FROM messages INDEXED BY messages_by_conversation")
        hints = {"conversations": conversations, "messages": messages, "presets": set()}
        for table in TABLES:
            columns = _columns(db, table)
            if columns:
                tables[table] = _read_table(db, table, columns, hints[table])
        return tables, conversations, messages
    finally:
        db.close()


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]
    except (sqlite3.Error, ValueError):
        return []


def _ids(db: sqlite3.Connection, sql: str) -> set[int]:
    """Integers a query yields before it fails (indexes are separate b-trees: they may be intact)."""
    found: set[int] = set()
    try:
        for (value,) in db.execute(sql):
            if isinstance(value, int):
                found.add(value)
    except (sqlite3.Error, ValueError):
        pass
    return found


def _read_table(db: sqlite3.Connection, table: str, columns: list[str], hints: set[int]) -> list[dict[str, Any]]:
    """Every readable row of ``table``: scan in rowid order; where the scan fails, find the next
    rowid that reads again (:func:`_next_readable`) and scan on; then read one by one the rowids
    the table's index knows (``hints``) that the scan missed. A damaged page costs its own rows."""
    names = ", ".join(f'"{c}"' for c in columns)
    scan = f"SELECT rowid, {names} FROM {table} WHERE rowid >= ? ORDER BY rowid"
    probe = f"SELECT rowid FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"
    hi = _max_rowid(db, table)
    found: dict[int, tuple[Any, ...]] = {}
    pos: int | None = 0  # Cove never writes rowids below 1
    deadline = time.monotonic() + BUDGET_S
    while pos is not None and time.monotonic() < deadline:
        try:
            for row in db.execute(scan, (pos,)):
                found[row[0]] = row[1:]
                pos = max(pos, row[0] + 1)  # never backwards: a damaged page can list rowids out of order
            break  # the rest of the table read cleanly
        except (sqlite3.Error, ValueError):
            known = max([pos, *hints, *found]) + LINEAR_MARGIN if hi is None else hi
            pos = _next_readable(db, probe, pos, known, hi if hi is not None else known + GAP)
    point = f"SELECT rowid, {names} FROM {table} WHERE rowid = ?"
    for rowid in sorted(hints - found.keys()):  # rows the index knows, on good pages the probes skipped
        if time.monotonic() > deadline:
            break
        try:
            row = db.execute(point, (rowid,)).fetchone()
        except (sqlite3.Error, ValueError):
            continue
        if row is not None:
            found[row[0]] = row[1:]
    return [dict(zip(columns, values)) | {"id": rowid} for rowid, values in sorted(found.items())]


def _probe_ok(db: sqlite3.Connection, probe: str, rowid: int) -> bool:
    try:
        db.execute(probe, (rowid,)).fetchone()
    except (sqlite3.Error, ValueError):
        return False
    return True


def _next_readable(db: sqlite3.Connection, probe: str, bad: int, known: int, end: int) -> int | None:
    """The smallest rowid above ``bad`` from which reading works again (None: none up to ``end``).
    Up to ``known`` (the highest rowid known to exist; at most LINEAR_LIMIT of them) every rowid is
    tried, so a good page between two damaged ones is not skipped; beyond, probes double their distance."""
    rowid = bad + 1
    while rowid <= min(known, end, bad + LINEAR_LIMIT):
        if _probe_ok(db, probe, rowid):
            return rowid
        rowid += 1
    step = 1
    while rowid + step <= end:
        if _probe_ok(db, probe, rowid + step):
            failing, ok = rowid + step // 2 if step > 1 else rowid, rowid + step
            while ok - failing > 1:
                mid = (failing + ok) // 2
                if _probe_ok(db, probe, mid):
                    ok = mid
                else:
                    failing = mid
            return ok
        step *= 2
    return None


def _max_rowid(db: sqlite3.Connection, table: str) -> int | None:
    try:
        value = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    except (sqlite3.Error, ValueError):
        return None
    return value if isinstance(value, int) else None


# -- writing -------------------------------------------------------------------------------------
def _write(target: Path, tables: dict[str, list[dict[str, Any]]]) -> tuple[int, int, int]:
    db = sqlite3.connect(str(target), isolation_level=None)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("BEGIN IMMEDIATE")
        triggers = [row[0] for row in db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                                                 " AND name IN ('messages_fts_insert', 'reasoning_fts_insert')")]
        db.execute("DROP TRIGGER messages_fts_insert")  # one rebuild at the end instead
        db.execute("DROP TRIGGER reasoning_fts_insert")
        conversations = _write_conversations(db, tables.get("conversations", []))
        messages = _write_messages(db, tables.get("messages", []), conversations)
        _fix_leaves(db)
        presets = _write_presets(db, tables.get("presets", []))
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        db.execute("INSERT INTO reasoning_fts(reasoning_fts) VALUES ('rebuild')")
        for trigger in triggers:
            db.execute(trigger)
        db.execute("COMMIT")
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise StoreError(f"The recovered conversation database failed its check: {verdict}")
        count = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
        return int(count), messages, presets
    finally:
        db.close()


def _write_conversations(db: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> set[int]:
    written: set[int] = set()
    for r in rows:
        values = (r["id"], _text(r.get("title"), "Recovered conversation"), _time(r.get("created_at")),
                  _time(r.get("updated_at")), _text(r.get("model"), ""), _int(r.get("leaf_id")),
                  1 if r.get("pinned") else 0, _real(r.get("deleted_at"), None), _text(r.get("settings"), "{}"))
        try:
            db.execute("INSERT INTO conversations (id, title, created_at, updated_at, model, leaf_id, pinned,"
                       " deleted_at, settings) VALUES (?,?,?,?,?,?,?,?,?)", values)
        except (sqlite3.Error, ValueError):
            continue
        written.add(int(r["id"]))
    return written


def _write_messages(db: sqlite3.Connection, rows: Iterable[dict[str, Any]], conversations: set[int]) -> int:
    written: set[int] = set()
    for r in rows:
        cid, role, status = _int(r.get("conversation_id")), r.get("role"), r.get("status")
        if cid is None or role not in ROLES:
            continue
        created = _time(r.get("created_at"))
        if cid not in conversations:  # its conversation's row was lost: give it a header
            db.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?,?,?,?)",
                       (cid, f"Recovered conversation {cid}", created, created))
            conversations.add(cid)
        parent = _int(r.get("parent_id"))
        try:
            db.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, status, created_at,"
                       " stats, reasoning, thinking_s, tool_calls, tool) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (r["id"], cid, parent if parent in written else None, role, _text(r.get("content"), ""),
                        status if status in STATUSES else COMPLETE, created, _text(r.get("stats"), "{}"),
                        _text(r.get("reasoning"), ""), _real(r.get("thinking_s"), 0.0),
                        _text(r.get("tool_calls"), "[]"), _text(r.get("tool"), "{}")))
        except (sqlite3.Error, ValueError):
            continue
        written.add(int(r["id"]))
    return len(written)


def _fix_leaves(db: sqlite3.Connection) -> None:
    db.execute("""UPDATE conversations SET leaf_id = (SELECT max(id) FROM messages m
                                                       WHERE m.conversation_id = conversations.id)
                  WHERE leaf_id IS NULL OR leaf_id NOT IN (SELECT id FROM messages m
                                                          WHERE m.conversation_id = conversations.id)""")


def _write_presets(db: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    for r in rows:
        if not isinstance(r.get("name"), str):
            continue
        try:
            db.execute("INSERT INTO presets (name, settings, updated_at) VALUES (?,?,?)",
                       (r["name"], _text(r.get("settings"), "{}"), _time(r.get("updated_at"))))
        except (sqlite3.Error, ValueError):
            continue
        count += 1
    return count


def _text(value: Any, default: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return default if value is None else str(value)


def _real(value: Any, default: float | None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _time(value: Any) -> float:
    return _real(value, None) or time.time()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
