"""Per-conversation settings and named presets: the store's JSON-valued records. Mixed into
:class:`desktop.core.conversations.store.Store`; import the store, not this module.

A conversation's settings are a free-form JSON object owned by the UI layer (for example
``{"model": ..., "system_prompt": ..., "temperature": ...}``); the store only keeps it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from desktop.core.conversations.branches import json_object
from desktop.core.conversations.records import Preset, json_dict


class SettingsOperations:
    """Conversation settings and presets; they need the store's connection and transaction."""

    _db: sqlite3.Connection
    _transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def get_conversation_settings(self, conversation_id: int) -> dict[str, Any]:
        """The conversation's own settings (model, system prompt, sampling...); {} when none."""
        row = self._db.execute("SELECT settings FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return json_dict(row[0]) if row else {}

    def set_conversation_settings(self, conversation_id: int, settings: dict[str, Any]) -> None:
        """Replace the conversation's settings with ``settings`` (a JSON-serialisable dict)."""
        text = json_object(settings)
        with self._transaction() as db:
            cur = db.execute("UPDATE conversations SET settings = ? WHERE id = ?", (text, conversation_id))
        if cur.rowcount == 0:
            raise ValueError(f"there is no conversation {conversation_id}")

    # -- presets -------------------------------------------------------------------------------
    def save_preset(self, name: str, settings: dict[str, Any]) -> Preset:
        """Create or replace the named preset."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("A preset needs a name")
        text, now = json_object(settings), time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO presets (name, settings, updated_at) VALUES (?,?,?) ON CONFLICT(name)"
                       " DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                       (name, text, now))
        return Preset(name, json_dict(text), now)

    def list_presets(self) -> list[Preset]:
        """All presets, by name (case-insensitive)."""
        rows = self._db.execute("SELECT * FROM presets ORDER BY name COLLATE NOCASE, name")
        return [Preset(r["name"], json_dict(r["settings"]), r["updated_at"]) for r in rows]

    def delete_preset(self, name: str) -> bool:
        """Delete the named preset; False when there was none."""
        with self._transaction() as db:
            return db.execute("DELETE FROM presets WHERE name = ?", (name,)).rowcount > 0
