"""The conversation store's value types: statuses, errors, and the records it hands out.

Kept apart from :mod:`desktop.core.conversations.store` so that the search, import and recovery modules can use
them without importing the store itself. Everything here is re-exported by ``store``; import it
from there.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

# Message status values.
COMPLETE = "complete"
STREAMING = "streaming"  # being written; left so by a crash, it reads as "incomplete"
STOPPED = "stopped"
FAILED = "failed"
STATUSES = (COMPLETE, STREAMING, STOPPED, FAILED)
ROLES = ("system", "user", "assistant", "tool")  # tool: a tool call's result (schema 4)


class StoreError(RuntimeError):
    """The conversation database cannot be used; the message says why, for a person."""


class NewerSchemaError(StoreError):
    """The database was written by a newer Cove; it is refused and left untouched."""


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened read-only (another Cove owns the database)."""


@dataclass(frozen=True)
class Conversation:
    """One conversation's header. ``deleted_at`` is set while a deleted one can still be restored."""

    id: int
    title: str
    created_at: float
    updated_at: float
    model: str
    leaf_id: int | None
    pinned: bool = False
    deleted_at: float | None = None


@dataclass(frozen=True)
class Message:
    """One message. ``stats`` holds generation figures for answers (tokens/s and so on);
    ``reasoning`` is what a thinking model wrote before its answer (``content``), ``thinking_s``
    how long that took. An answer that called tools lists the calls in ``tool_calls``
    (:meth:`desktop.core.tools.specs.ToolCall.to_dict`); a message of role 'tool' holds one call's
    result as ``content`` and its facts (name, arguments, status, time) in ``tool``."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    created_at: float
    stats: dict[str, Any] = field(default_factory=dict)
    reasoning: str = ""
    thinking_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool: dict[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        """True for an answer that did not finish (stopped, failed, or cut by a crash)."""
        return self.status != COMPLETE


@dataclass(frozen=True)
class Preset:
    """Named per-chat settings (model, system prompt, sampling) a conversation can start from."""

    name: str
    settings: dict[str, Any]
    updated_at: float


@dataclass
class TreeMessage:
    """A message to import: ``key`` names it within its conversation, ``parent_key`` its parent."""

    key: str
    parent_key: str | None
    role: str
    content: str
    status: str = COMPLETE
    created_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    reasoning: str = ""
    thinking_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConversationTree:
    """A whole conversation to import, every branch included; messages parents-first."""

    title: str
    created_at: float
    updated_at: float
    messages: list[TreeMessage] = field(default_factory=list)
    leaf_key: str | None = None
    pinned: bool = False
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


def decode_text(raw: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 (damage) become U+FFFD instead of an error."""
    return raw.decode("utf-8", "replace")


def json_dict(text: str | None) -> dict[str, Any]:
    """A JSON object stored as text; {} when missing, malformed or not an object."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def json_list(text: str | None) -> list[Any]:
    """A JSON array stored as text; [] when missing, malformed or not an array."""
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    """A :class:`Conversation` from a ``conversations`` row (schema 1 rows lack the v2 columns)."""
    keys = row.keys()
    return Conversation(
        row["id"], row["title"], row["created_at"], row["updated_at"], row["model"], row["leaf_id"],
        bool(row["pinned"]) if "pinned" in keys else False,
        row["deleted_at"] if "deleted_at" in keys else None,
    )


def message_from_row(row: sqlite3.Row) -> Message:
    """A :class:`Message` from a ``messages`` row (rows before schema 3 have no reasoning, before
    4 no tools)."""
    keys = row.keys()
    return Message(
        row["id"], row["conversation_id"], row["parent_id"], row["role"], row["content"],
        row["status"], row["created_at"], json_dict(row["stats"]),
        row["reasoning"] if "reasoning" in keys else "", float(row["thinking_s"]) if "thinking_s" in keys else 0.0,
        [c for c in json_list(row["tool_calls"]) if isinstance(c, dict)] if "tool_calls" in keys else [],
        json_dict(row["tool"]) if "tool" in keys else {},
    )
