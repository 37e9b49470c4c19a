"""Conversations and messages in SQLite.

One connection, used from one thread (the GUI gives it a worker thread of its own). WAL journal,
``synchronous=FULL`` so that a committed message survives a crash or power loss, explicit
transactions, and the schema versioned with ``PRAGMA user_version``.

Messages form a tree through ``parent_id``: regenerating an answer adds a sibling instead of
overwriting, and ``conversations.leaf_id`` names the tip of the branch shown to the person.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Message status values.
COMPLETE = "complete"
STREAMING = "streaming"  # being written; left so by a crash, it reads as "incomplete"
STOPPED = "stopped"
FAILED = "failed"
STATUSES = (COMPLETE, STREAMING, STOPPED, FAILED)


class StoreError(RuntimeError):
    """The conversation database cannot be used; the message says why, for a person."""


@dataclass(frozen=True)
class Conversation:
    """One conversation's header."""

    id: int
    title: str
    created_at: float
    updated_at: float
    model: str
    leaf_id: int | None


@dataclass(frozen=True)
class Message:
    """One message. ``stats`` holds generation figures for answers (tokens/s and so on)."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    created_at: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        """True for an answer that did not finish (stopped, failed, or cut by a crash)."""
        return self.status != COMPLETE


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            leaf_id INTEGER
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete',
            created_at REAL NOT NULL,
            stats TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")
    db.execute("CREATE INDEX conversations_by_update ON conversations(updated_at DESC)")


# Index i holds the step from user_version i to i + 1. Append only; never edit a shipped step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """The conversation database. Not thread-safe: use it from the thread that opened it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        if isinstance(self.path, Path):
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a folder, not a conversation database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The conversation database {path} cannot be opened: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            # Refuse a newer schema before anything writes: switching to WAL rewrites the header.
            self._check_version()
            self._db.execute("PRAGMA foreign_keys = ON")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() not in ("wal", "memory"):
                raise StoreError(f"{path} cannot use write-ahead logging (journal mode {mode})")
            self._db.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"The conversation database {path} cannot be opened: {exc}") from exc
            raise

    # -- schema ---------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The database's ``user_version``."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> int:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The conversation database was written by a newer Cove (schema {version}; "
                f"this one knows {SCHEMA_VERSION}). It was left untouched."
            )
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                MIGRATIONS[step](self._db)
                self._db.execute(f"PRAGMA user_version = {step + 1}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self._db.close()

    # -- conversations ----------------------------------------------------------------------
    def create_conversation(self, title: str = "New chat", model: str = "") -> Conversation:
        """Create and return an empty conversation."""
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model) VALUES (?,?,?,?)",
                (title, now, now, model),
            )
        return Conversation(int(cur.lastrowid), title, now, now, model, None)

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with that id, or None."""
        row = self._db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return _conversation(row) if row else None

    def list_conversations(self) -> list[Conversation]:
        """All conversations, most recently updated first."""
        rows = self._db.execute("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")
        return [_conversation(r) for r in rows]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title (blank titles are refused)."""
        title = " ".join(title.split())
        if not title:
            raise ValueError("A conversation needs a title")
        with self._transaction() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_conversation_model(self, conversation_id: int, model: str) -> None:
        """Remember which model a conversation last used."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and all its messages."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET leaf_id = NULL WHERE id = ?", (conversation_id,))
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- messages ----------------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        parent_id: int | None = None,
        status: str = COMPLETE,
        stats: dict[str, Any] | None = None,
    ) -> Message:
        """Append a message (committed before this returns) and make it the conversation's tip."""
        if status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, created_at, stats)"
                " VALUES (?,?,?,?,?,?,?)",
                (conversation_id, parent_id, role, content, status, now, json.dumps(stats or {})),
            )
            message_id = int(cur.lastrowid)
            db.execute(
                "UPDATE conversations SET leaf_id = ?, updated_at = ? WHERE id = ?",
                (message_id, now, conversation_id),
            )
        return Message(message_id, conversation_id, parent_id, role, content, status, now, stats or {})

    def update_message(
        self,
        message_id: int,
        content: str,
        *,
        status: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        """Replace a message's text (a streaming flush), optionally its status and stats."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET content = ?, status = COALESCE(?, status),"
                " stats = COALESCE(?, stats) WHERE id = ?",
                (content, status, json.dumps(stats) if stats is not None else None, message_id),
            )

    def get_message(self, message_id: int) -> Message | None:
        """The message with that id, or None."""
        row = self._db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def set_leaf(self, conversation_id: int, message_id: int | None) -> None:
        """Show the branch ending at ``message_id``."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (message_id, conversation_id))

    def active_path(self, conversation_id: int) -> list[Message]:
        """The messages of the shown branch, oldest first."""
        rows = self._db.execute(
            """WITH RECURSIVE path(id) AS (
                   SELECT leaf_id FROM conversations WHERE id = ?
                   UNION ALL
                   SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id
                   WHERE m.parent_id IS NOT NULL
               )
               SELECT messages.* FROM messages JOIN path ON messages.id = path.id
               ORDER BY messages.id""",
            (conversation_id,),
        )
        return [_message(r) for r in rows]

    def message_count(self) -> int:
        """Number of messages in the whole database."""
        return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: 'ok' when healthy."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(row["id"], row["title"], row["created_at"], row["updated_at"], row["model"], row["leaf_id"])


def _message(row: sqlite3.Row) -> Message:
    try:
        stats = json.loads(row["stats"] or "{}")
    except ValueError:
        stats = {}
    return Message(
        row["id"], row["conversation_id"], row["parent_id"], row["role"], row["content"],
        row["status"], row["created_at"], stats if isinstance(stats, dict) else {},
    )


def suggest_title(first_user_message: str, limit: int = 48) -> str:
    """A conversation title from its first question: one line, at most ``limit`` characters."""
    words = " ".join(first_user_message.split())
    if len(words) <= limit:
        return words or "New chat"
    cut = words[:limit].rsplit(" ", 1)[0] or words[:limit]
    return cut + "…"
