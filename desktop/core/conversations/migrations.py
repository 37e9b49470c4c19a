"""The conversation database's schema, one step per version (``PRAGMA user_version``).

Each step runs in its own transaction with the version bump (:meth:`Store._migrate`); a damaged
database is salvaged into a new file built by the same steps (:mod:`desktop.core.conversations.salvage`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


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


def _migration_2(db: sqlite3.Connection) -> None:
    """Search (FTS5 over message text), pinning, soft delete, per-chat settings, presets."""
    db.execute("ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE conversations ADD COLUMN deleted_at REAL")
    db.execute("ALTER TABLE conversations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'")
    db.execute("CREATE TABLE presets (name TEXT PRIMARY KEY, settings TEXT NOT NULL DEFAULT '{}',"
               " updated_at REAL NOT NULL)")
    db.execute("CREATE INDEX messages_by_parent ON messages(parent_id)")
    db.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute(
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
               INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
           END"""
    )
    db.execute(
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
               INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
           END"""
    )
    db.execute(
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
               INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
               INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
           END"""
    )
    db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")  # back-fill existing rows


def _migration_3(db: sqlite3.Connection) -> None:
    """Reasoning models: an answer's reasoning and thinking time apart from its text, searchable
    on request (a second FTS5 index, over ``reasoning``)."""
    db.execute("ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE messages ADD COLUMN thinking_s REAL NOT NULL DEFAULT 0")
    db.execute(
        "CREATE VIRTUAL TABLE reasoning_fts USING fts5(reasoning, content='messages', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    db.execute(
        """CREATE TRIGGER reasoning_fts_insert AFTER INSERT ON messages BEGIN
               INSERT INTO reasoning_fts(rowid, reasoning) VALUES (new.id, new.reasoning);
           END"""
    )
    db.execute(
        """CREATE TRIGGER reasoning_fts_delete AFTER DELETE ON messages BEGIN
               INSERT INTO reasoning_fts(reasoning_fts, rowid, reasoning) VALUES ('delete', old.id, old.reasoning);
           END"""
    )
    db.execute(
        """CREATE TRIGGER reasoning_fts_update AFTER UPDATE OF reasoning ON messages BEGIN
               INSERT INTO reasoning_fts(reasoning_fts, rowid, reasoning) VALUES ('delete', old.id, old.reasoning);
               INSERT INTO reasoning_fts(rowid, reasoning) VALUES (new.id, new.reasoning);
           END"""
    )


def _migration_4(db: sqlite3.Connection) -> None:
    """Tools: messages of role 'tool' (a call's result), an answer's calls (``tool_calls``, a JSON
    list) and a result's facts (``tool``, a JSON object). SQLite cannot change a CHECK, so the
    table is rebuilt: the new one references itself by its own name (so the old table's drop
    cascades into nothing), takes every row with its id, and the indexes, triggers and both
    search indexes are made again."""
    db.execute(
        """CREATE TABLE messages_v4 (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages_v4(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete',
            created_at REAL NOT NULL,
            stats TEXT NOT NULL DEFAULT '{}',
            reasoning TEXT NOT NULL DEFAULT '',
            thinking_s REAL NOT NULL DEFAULT 0,
            tool_calls TEXT NOT NULL DEFAULT '[]',
            tool TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("INSERT INTO messages_v4 (id, conversation_id, parent_id, role, content, status, created_at, stats,"
               " reasoning, thinking_s) SELECT id, conversation_id, parent_id, role, content, status, created_at,"
               " stats, reasoning, thinking_s FROM messages ORDER BY id")
    for trigger in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update",
                    "reasoning_fts_insert", "reasoning_fts_delete", "reasoning_fts_update"):
        db.execute(f"DROP TRIGGER {trigger}")  # before the drop: its implicit delete must not touch the indexes
    db.execute("DROP TABLE messages")
    db.execute("ALTER TABLE messages_v4 RENAME TO messages")
    db.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")
    db.execute("CREATE INDEX messages_by_parent ON messages(parent_id)")
    for index, column in (("messages_fts", "content"), ("reasoning_fts", "reasoning")):
        db.execute(f"""CREATE TRIGGER {index}_insert AFTER INSERT ON messages BEGIN
                           INSERT INTO {index}(rowid, {column}) VALUES (new.id, new.{column});
                       END""")
        db.execute(f"""CREATE TRIGGER {index}_delete AFTER DELETE ON messages BEGIN
                           INSERT INTO {index}({index}, rowid, {column}) VALUES ('delete', old.id, old.{column});
                       END""")
        db.execute(f"""CREATE TRIGGER {index}_update AFTER UPDATE OF {column} ON messages BEGIN
                           INSERT INTO {index}({index}, rowid, {column}) VALUES ('delete', old.id, old.{column});
                           INSERT INTO {index}(rowid, {column}) VALUES (new.id, new.{column});
                       END""")
        db.execute(f"INSERT INTO {index}({index}) VALUES ('rebuild')")


# Index i holds the step from user_version i to i + 1. Append only; never edit a shipped step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3, _migration_4]
SCHEMA_VERSION = len(MIGRATIONS)
