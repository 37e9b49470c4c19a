"""Conversations and messages in SQLite.

One connection, used from one thread (the GUI gives it a worker thread of its own). WAL journal,
``synchronous=FULL`` so that a committed message survives a crash or power loss, explicit
transactions, and the schema versioned with ``PRAGMA user_version``.

Messages form a tree through ``parent_id``: regenerating an answer or editing a question adds a
sibling instead of overwriting, and ``conversations.leaf_id`` names the tip of the branch shown to
the person (:meth:`Store.siblings` and :meth:`Store.switch_branch` move between versions).

Schema 2 adds full-text search (:mod:`desktop.core.conversations.search`), pinning, soft delete with
restore (a deleted conversation is invisible to every reading method until restored or purged),
per-conversation settings as JSON and named presets.

Opening a file that may be damaged goes through :func:`desktop.core.conversations.recovery.open_store_with_recovery`;
``Store`` itself only refuses what it cannot use.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from desktop.core.conversations.branches import BranchOperations
from desktop.core.conversations.chat_presets import SettingsOperations
from desktop.core.conversations.migrations import MIGRATIONS, SCHEMA_VERSION
from desktop.core.conversations.records import (
    COMPLETE,
    FAILED,
    ROLES,
    STATUSES,
    STOPPED,
    STREAMING,
    Conversation,
    ConversationTree,
    Message,
    NewerSchemaError,
    Preset,
    ReadOnlyStoreError,
    StoreError,
    TreeMessage,
    conversation_from_row,
    decode_text,
    message_from_row,
)
from desktop.core.conversations.search import MATCH_END, MATCH_START, SearchHit, SearchOperations

READ_ONLY_REASON = "This conversation database is open read-only; nothing can be changed here."



_LIVE = "deleted_at IS NULL"


class Store(BranchOperations, SettingsOperations, SearchOperations):
    """The conversation database. Not thread-safe: use it from the thread that opened it.

    ``read_only=True`` opens the file with SQLite's ``mode=ro`` (a second Cove window on data
    another one owns): reading works, every write raises :class:`ReadOnlyStoreError` with
    ``read_only_reason``. ``on_close`` callbacks run after :meth:`close` (lock release).
    """

    def __init__(self, path: Path | str, *, read_only: bool = False,
                 read_only_reason: str = READ_ONLY_REASON) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self.read_only = read_only
        self.read_only_reason = read_only_reason
        self.on_close: list[Callable[[], None]] = []
        if isinstance(self.path, Path):
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a folder, not a conversation database")
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if read_only and isinstance(self.path, Path):
                target, uri = self.path.resolve().as_uri() + "?mode=ro", True
            else:
                target, uri = str(path), False
            self._db = sqlite3.connect(target, isolation_level=None, timeout=5.0, uri=uri)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The conversation database {path} cannot be opened: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            self._db.text_factory = decode_text  # a flipped bit in a text must not make it unreadable
            # Refuse a newer schema before anything writes: switching to WAL rewrites the header.
            version = self._check_version()
            self._db.execute("PRAGMA foreign_keys = ON")
            if read_only:
                if version != SCHEMA_VERSION:
                    raise StoreError(f"The conversation database {path} has schema {version} and cannot "
                                     "be updated while it is open read-only.")
            else:
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
            raise NewerSchemaError(
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
        if self.read_only:
            raise ReadOnlyStoreError(self.read_only_reason)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (checkpointing the WAL), then run the ``on_close`` callbacks once."""
        self._db.close()
        hooks, self.on_close = self.on_close, []
        for hook in hooks:
            hook()

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

    def get_conversation(self, conversation_id: int, *, include_deleted: bool = False) -> Conversation | None:
        """The conversation with that id, or None (also for a deleted one, unless ``include_deleted``)."""
        live = "" if include_deleted else f" AND {_LIVE}"
        row = self._db.execute(f"SELECT * FROM conversations WHERE id = ?{live}", (conversation_id,)).fetchone()
        return conversation_from_row(row) if row else None

    def list_conversations(self, *, deleted: bool = False) -> list[Conversation]:
        """Conversations not deleted: pinned first, then most recently updated first.
        ``deleted=True`` lists the deleted ones instead (restorable), most recently deleted first."""
        if deleted:
            sql = "SELECT * FROM conversations WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC, id DESC"
        else:
            sql = f"SELECT * FROM conversations WHERE {_LIVE} ORDER BY pinned DESC, updated_at DESC, id DESC"
        return [conversation_from_row(r) for r in self._db.execute(sql)]

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

    def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        """Pin a conversation to the top of the list, or unpin it."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET pinned = ? WHERE id = ?", (int(bool(pinned)), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation so that it can be restored: it disappears from every reading
        method (list, get, search, export, message counts) until :meth:`restore_conversation`;
        :meth:`purge_deleted` removes it for good."""
        with self._transaction() as db:
            db.execute(f"UPDATE conversations SET deleted_at = ? WHERE id = ? AND {_LIVE}",
                       (time.time(), conversation_id))

    def restore_conversation(self, conversation_id: int) -> bool:
        """Undo :meth:`delete_conversation`; False when there was nothing deleted to restore."""
        with self._transaction() as db:
            cur = db.execute("UPDATE conversations SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL",
                             (conversation_id,))
        return cur.rowcount > 0

    def create_conversation_with_message(self, title: str, model: str, content: str) -> tuple[Conversation, Message]:
        """A new conversation and its first question in ONE transaction: a crash can never leave
        an empty conversation behind."""
        now = time.time()
        with self._transaction() as db:
            cur = db.execute("INSERT INTO conversations (title, created_at, updated_at, model) VALUES (?,?,?,?)",
                             (title, now, now, model))
            cid = int(cur.lastrowid)
            cur = db.execute("INSERT INTO messages (conversation_id, parent_id, role, content, status, created_at,"
                             " stats) VALUES (?, NULL, 'user', ?, 'complete', ?, '{}')", (cid, content, now))
            mid = int(cur.lastrowid)
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (mid, cid))
        conversation = self.get_conversation(cid)
        message = self.get_message(mid)
        assert conversation is not None and message is not None
        return conversation, message

    def purge_deleted(self, older_than_s: float = 0.0) -> int:
        """Remove for good the conversations deleted at least ``older_than_s`` seconds ago, with
        their messages; returns how many."""
        cutoff = time.time() - older_than_s
        with self._transaction() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?", (cutoff,))]
            for cid in ids:
                db.execute("UPDATE conversations SET leaf_id = NULL WHERE id = ?", (cid,))
                db.execute("DELETE FROM messages WHERE conversation_id = ?", (cid,))
                db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
        return len(ids)

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
        reasoning: str = "",
        thinking_s: float = 0.0,
        tool_calls: list[dict[str, Any]] | None = None,
        tool: dict[str, Any] | None = None,
    ) -> Message:
        """Append a message (committed before this returns) and make it the conversation's tip."""
        if status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, created_at, stats,"
                " reasoning, thinking_s, tool_calls, tool) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (conversation_id, parent_id, role, content, status, now, json.dumps(stats or {}), reasoning,
                 thinking_s, json.dumps(tool_calls or [], ensure_ascii=False),
                 json.dumps(tool or {}, ensure_ascii=False)),
            )
            message_id = int(cur.lastrowid)
            db.execute(
                "UPDATE conversations SET leaf_id = ?, updated_at = ? WHERE id = ?",
                (message_id, now, conversation_id),
            )
        return Message(message_id, conversation_id, parent_id, role, content, status, now, stats or {},
                       reasoning, thinking_s, list(tool_calls or []), dict(tool or {}))

    def update_message(
        self,
        message_id: int,
        content: str,
        *,
        status: str | None = None,
        stats: dict[str, Any] | None = None,
        reasoning: str | None = None,
        thinking_s: float | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace a message's text (a streaming flush), optionally its status, stats, reasoning
        and tool calls."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        calls = json.dumps(tool_calls, ensure_ascii=False) if tool_calls is not None else None
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET content = ?, status = COALESCE(?, status), stats = COALESCE(?, stats),"
                " reasoning = COALESCE(?, reasoning), thinking_s = COALESCE(?, thinking_s),"
                " tool_calls = COALESCE(?, tool_calls) WHERE id = ?",
                (content, status, json.dumps(stats) if stats is not None else None, reasoning, thinking_s,
                 calls, message_id),
            )

    def get_message(self, message_id: int) -> Message | None:
        """The message with that id, or None (also when its conversation is deleted)."""
        row = self._db.execute(
            f"SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.id = ? AND c.{_LIVE}", (message_id,)).fetchone()
        return message_from_row(row) if row else None

    def all_messages(self, conversation_id: int) -> list[Message]:
        """Every message of a conversation, all branches, oldest first (parents before children)."""
        rows = self._db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [message_from_row(r) for r in rows]

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
        return [message_from_row(r) for r in rows]

    def message_count(self) -> int:
        """Number of messages in conversations that are not deleted."""
        return int(self._db.execute(
            f"SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE c.{_LIVE}").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: 'ok' when healthy."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def suggest_title(first_user_message: str, limit: int = 48) -> str:
    """A conversation title from its first question: one line, at most ``limit`` characters."""
    words = " ".join(first_user_message.split())
    if len(words) <= limit:
        return words or "New chat"
    cut = words[:limit].rsplit(" ", 1)[0] or words[:limit]
    return cut + "…"


__all__ = [
    "COMPLETE", "FAILED", "MATCH_END", "MATCH_START", "READ_ONLY_REASON", "ROLES",
    "STATUSES", "STOPPED", "STREAMING", "Conversation", "ConversationTree", "Message", "NewerSchemaError", "Preset",
    "ReadOnlyStoreError", "SearchHit", "Store", "StoreError", "TreeMessage", "decode_text", "suggest_title",
]
