"""A large conversation database for scale tests and benchmarks, built fast.

1,000 conversations x 100 messages (a linear user/assistant thread each) are written with
``executemany`` in one transaction through the real schema (FTS triggers included), with
pseudo-random English-like text; one message holds a word found nowhere else.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from desktop.core.conversations.store import Store

COMMON = ["the", "a", "of", "to", "and", "in", "is", "it", "that", "for", "on", "with", "as", "was", "be", "this", "are", "by", "at", "or", "from", "have", "an", "not", "but", "they", "which", "you", "one", "all", "were", "we", "there", "can", "her", "has", "more", "if", "will", "about", "up", "out", "so", "what", "when", "model", "memory", "thread", "answer", "question", "python", "sqlite", "window", "token", "context", "cache", "speed", "file", "local", "disk", "branch", "search", "export", "import", "settings", "prompt", "system", "user", "data", "table", "index"]
NEEDLE = "xylophonetic"  # occurs in exactly one message


@dataclass(frozen=True)
class BigDatabase:
    """What :func:`build_big_database` wrote."""

    path: Path
    conversations: int
    messages_per_conversation: int
    needle: str
    needle_message_id: int
    needle_conversation_id: int
    build_s: float


def _sentence(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choices(words, k=rng.randint(6, 24))).capitalize() + "."


def build_big_database(path: Path, conversations: int = 1000, per_conversation: int = 100,
                       seed: int = 11) -> BigDatabase:
    """Write the database at ``path`` (which must not exist) and return where the needle is."""
    started = time.perf_counter()
    Store(path).close()  # the schema, migrated to the current version
    rng = random.Random(seed)
    rare = ["".join(rng.choice("bcdfghjklmnpqrstvwz") + rng.choice("aeiou") for _ in range(3))
            for _ in range(3000)]
    words = COMMON * 6 + rare
    needle_conv = conversations * 2 // 3 + 1
    needle_index = per_conversation // 2 + 1
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        # Index once at the end (much faster than the per-row trigger), then restore the trigger.
        trigger = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                             " AND name = 'messages_fts_insert'").fetchone()[0]
        db.execute("DROP TRIGGER messages_fts_insert")
        base = time.time() - conversations * 3600.0
        conv_rows, msg_rows, leaves = [], [], []
        message_id = 0
        needle_id = 0
        for c in range(1, conversations + 1):
            t0 = base + c * 3600.0
            conv_rows.append((c, f"Conversation {c}: " + " ".join(rng.choice(rare) for _ in range(3)),
                              t0, t0 + per_conversation * 30.0, "", None))
            parent = None
            for i in range(1, per_conversation + 1):
                message_id += 1
                role = "user" if i % 2 else "assistant"
                text = " ".join(_sentence(rng, words) for _ in range(1 if role == "user" else 3))
                if c == needle_conv and i == needle_index:
                    text += f" The {NEEDLE} answer is here."
                    needle_id = message_id
                msg_rows.append((message_id, c, parent, role, text, "complete", t0 + i * 30.0, "{}"))
                parent = message_id
            leaves.append((parent, c))
        db.executemany("INSERT INTO conversations (id, title, created_at, updated_at, model, leaf_id)"
                       " VALUES (?,?,?,?,?,?)", conv_rows)
        db.executemany("INSERT INTO messages (id, conversation_id, parent_id, role, content, status, created_at,"
                       " stats) VALUES (?,?,?,?,?,?,?,?)", msg_rows)
        db.executemany("UPDATE conversations SET leaf_id = ? WHERE id = ?", leaves)
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        db.execute(trigger)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return BigDatabase(path, conversations, per_conversation, NEEDLE, needle_id, needle_conv,
                       time.perf_counter() - started)
