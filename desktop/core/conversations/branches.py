"""The message tree of a conversation: versions (siblings), switching branches, editing a
question, and importing whole trees. Mixed into :class:`desktop.core.conversations.store.Store`; import the
store, not this module.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from desktop.core.conversations.records import ROLES, STATUSES, ConversationTree, Message, message_from_row


class BranchOperations:
    """Tree operations of the store; they need the store's connection and transaction."""

    _db: sqlite3.Connection
    _transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    get_message: Callable[[int], Message | None]
    add_message: Callable[..., Message]
    set_leaf: Callable[[int, int | None], None]
    active_path: Callable[[int], list[Message]]

    # -- branches ------------------------------------------------------------------------------
    def children(self, message_id: int) -> list[Message]:
        """The direct replies to a message (every branch), oldest first."""
        rows = self._db.execute("SELECT * FROM messages WHERE parent_id = ? ORDER BY id", (message_id,))
        return [message_from_row(r) for r in rows]

    def version_map(self, path: list[Message]) -> dict[int, list[int]]:
        """For each message of ``path`` that has other versions: the ids of all its versions, oldest first."""
        result: dict[int, list[int]] = {}
        for message in path:
            siblings = self.siblings(message.id)
            if len(siblings) > 1:
                result[message.id] = [m.id for m in siblings]
        return result

    def siblings(self, message_id: int) -> list[Message]:
        """The versions of a message, itself included, oldest first: messages with the same parent
        and role (for a first message: no parent, same conversation). Its position in this list
        and the length give the view's ``< 2/3 >``."""
        me = self._db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if me is None:
            return []
        if me["parent_id"] is None:
            rows = self._db.execute("SELECT * FROM messages WHERE conversation_id = ? AND parent_id IS NULL"
                                    " AND role = ? ORDER BY id", (me["conversation_id"], me["role"]))
        else:
            rows = self._db.execute("SELECT * FROM messages WHERE parent_id = ? AND role = ? ORDER BY id",
                                    (me["parent_id"], me["role"]))
        return [message_from_row(r) for r in rows]

    def switch_branch(self, conversation_id: int, message_id: int) -> list[Message]:
        """Show the branch through ``message_id``: from it, follow the newest reply down to a
        leaf and make that the conversation's tip. Returns the new shown branch."""
        row = self._db.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None or row[0] != conversation_id:
            raise ValueError(f"message {message_id} is not in conversation {conversation_id}")
        leaf = message_id
        while True:
            newest = self._db.execute("SELECT max(id) FROM messages WHERE parent_id = ?", (leaf,)).fetchone()[0]
            if newest is None:
                break
            leaf = int(newest)
        self.set_leaf(conversation_id, leaf)
        return self.active_path(conversation_id)

    def edit_user_message(self, message_id: int, new_text: str) -> Message:
        """Store an edited question as a new version beside the old one (same parent) and show it;
        the old question and everything after it stay as a branch."""
        old = self.get_message(message_id)
        if old is None or old.role != "user":
            raise ValueError(f"message {message_id} is not a question that can be edited")
        if not new_text.strip():
            raise ValueError("The message is empty")
        return self.add_message(old.conversation_id, "user", new_text, parent_id=old.parent_id)

    # -- import ------------------------------------------------------------------------------
    def import_trees(self, trees: Sequence[ConversationTree]) -> list[int]:
        """Add whole conversations (every branch) in ONE transaction: all of them or, on any
        error (ValueError for inconsistent input), none. Returns the new conversation ids."""
        ids: list[int] = []
        with self._transaction() as db:
            for n, tree in enumerate(trees, 1):
                ids.append(_insert_tree(db, tree, n))
        return ids


def json_object(settings: dict[str, Any]) -> str:
    """``settings`` as canonical JSON text (sorted keys); ValueError when it is not storable."""
    if not isinstance(settings, dict):
        raise ValueError("settings must be a dictionary")
    try:
        return json.dumps(settings, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings cannot be stored: {exc}") from exc


def _insert_tree(db: sqlite3.Connection, tree: ConversationTree, n: int) -> int:
    where = f"conversation {n} ({tree.title!r})"
    cur = db.execute(
        "INSERT INTO conversations (title, created_at, updated_at, model, pinned, settings) VALUES (?,?,?,?,?,?)",
        (tree.title, tree.created_at, tree.updated_at, tree.model, int(tree.pinned), json_object(tree.settings)),
    )
    conversation_id = int(cur.lastrowid)
    ids: dict[str, int] = {}
    for m in tree.messages:
        if m.key in ids:
            raise ValueError(f"{where}: message key {m.key!r} appears twice")
        if m.parent_key is not None and m.parent_key not in ids:
            raise ValueError(f"{where}: message {m.key!r} refers to parent {m.parent_key!r}, "
                             "which does not come before it")
        if m.role not in ROLES:
            raise ValueError(f"{where}: message {m.key!r} has an unknown role {m.role!r}")
        if m.status not in STATUSES:
            raise ValueError(f"{where}: message {m.key!r} has an unknown status {m.status!r}")
        if not isinstance(m.content, str):
            raise ValueError(f"{where}: message {m.key!r} has no text")
        cur = db.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, content, status, created_at, stats,"
            " reasoning, thinking_s, tool_calls, tool) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (conversation_id, ids[m.parent_key] if m.parent_key is not None else None, m.role, m.content,
             m.status, m.created_at, json_object(m.stats), m.reasoning if isinstance(m.reasoning, str) else "",
             float(m.thinking_s) if isinstance(m.thinking_s, (int, float)) else 0.0,
             json.dumps([c for c in m.tool_calls if isinstance(c, dict)] if isinstance(m.tool_calls, list) else [],
                        ensure_ascii=False),
             json_object(m.tool if isinstance(m.tool, dict) else {})),
        )
        ids[m.key] = int(cur.lastrowid)
    if tree.leaf_key is not None and tree.leaf_key not in ids:
        raise ValueError(f"{where}: the shown message {tree.leaf_key!r} is not among its messages")
    leaf = ids[tree.leaf_key] if tree.leaf_key is not None else (max(ids.values()) if ids else None)
    db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conversation_id))
    return conversation_id
