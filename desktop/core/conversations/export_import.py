"""Export conversations as Markdown or Cove JSON; import Cove JSON and ChatGPT's export.

**Markdown** is for reading: per conversation a ``#`` title, then the shown branch with a ``##``
heading per message (``User``, ``Assistant``, ``System``); message text goes in verbatim, so code
blocks stay code blocks. Several conversations are separated by ``---``.

**Cove JSON** keeps everything, every branch included, without database ids::

    {"format": "cove-conversations", "version": 1, "conversations": [
      {"title", "created_at", "updated_at", "pinned", "model", "settings", "leaf_key",
       "messages": [{"key", "parent_key", "role", "content", "status", "created_at", "stats",
                     "reasoning", "thinking_s", "tool_calls"?, "tool"?}]}]}

``tool_calls`` (an answer's calls: ``id``, ``name``, ``arguments``) and ``tool`` (a result's facts,
on messages of role ``tool``) are written only where there are some, so exports of conversations
without tools are what they were.

Messages are listed parents first; ``key`` numbers them 1, 2, ... within their conversation and
``parent_key``/``leaf_key`` refer to those numbers. Conversations come oldest first. The text is
canonical (sorted keys, two-space indent, floats as Python's shortest round-trip repr, UTF-8), so
export -> import -> export gives the same bytes.

**Import** (:func:`import_file`, :func:`import_text`) recognises Cove JSON and ChatGPT's
``conversations.json`` (or the ``.zip`` it comes in); see :mod:`desktop.core.conversations.chatgpt_import`.
Everything is imported in one transaction: a malformed file, an unknown format, a newer version
or an inconsistent conversation raises :class:`ImportFormatError` and imports nothing.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.conversations.chatgpt_import import looks_like_chatgpt, parse_chatgpt
from desktop.core.conversations.store import Conversation, ConversationTree, Store, TreeMessage
from desktop.core.system.atomic import write_text_atomic

FORMAT = "cove-conversations"
VERSION = 1
FORMATS = ("md", "json")
ROLE_HEADINGS = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}


class ImportFormatError(ValueError):
    """The file cannot be imported; the message says why, for a person. Nothing was imported."""


@dataclass(frozen=True)
class ImportResult:
    """What an import added. ``skipped`` counts messages left out (tool calls and the like)."""

    source: str  # "cove" or "chatgpt"
    conversations: int
    messages: int
    skipped: int = 0
    conversation_ids: list[int] = field(default_factory=list)


# -- export --------------------------------------------------------------------------------------
def _chosen(store: Store, conversation_ids: list[int] | None) -> list[Conversation]:
    if conversation_ids is None:
        return sorted(store.list_conversations(), key=lambda c: (c.created_at, c.id))
    chosen = []
    for cid in conversation_ids:
        conversation = store.get_conversation(cid)
        if conversation is None:
            raise LookupError(f"there is no conversation {cid}")
        chosen.append(conversation)
    return chosen


def export_markdown(store: Store, conversation_ids: list[int] | None = None) -> str:
    """The shown branch of each conversation (all when ``conversation_ids`` is None) as Markdown."""
    blocks = []
    for conversation in _chosen(store, conversation_ids):
        lines = [f"# {conversation.title}", ""]
        for message in store.active_path(conversation.id):
            if message.role == "tool":
                lines += _tool_result_markdown(message.tool, message.content)
                continue
            lines += [f"## {ROLE_HEADINGS.get(message.role, message.role.title())}", ""]
            if message.reasoning.strip():
                lines += [f"<details><summary>{thought_label(message.thinking_s)}</summary>", "",
                          message.reasoning.strip(), "", "</details>", ""]
            lines.append(message.content.rstrip())
            for call in message.tool_calls:
                lines += ["", f"> Tool call `{call.get('name', '')}` "
                              f"`{json.dumps(call.get('arguments', {}), ensure_ascii=False)}`"]
            if message.incomplete:
                lines += ["", f"*(incomplete answer: {message.status})*"]
            lines.append("")
        blocks.append("\n".join(lines))
    return "\n---\n\n".join(blocks)


def _tool_result_markdown(tool: dict[str, Any], content: str) -> list[str]:
    """A tool result as Markdown: its heading (tool, status, time), arguments and text fenced."""
    status = str(tool.get("status") or "ok")
    seconds = tool.get("duration_s") or 0
    facts = [status] + ([f"{float(seconds):.2f} s"] if seconds else [])
    fence = "````" if "```" in content else "```"
    return [f"## Tool result: {tool.get('name', '')} ({', '.join(facts)})", "",
            f"Arguments: `{json.dumps(tool.get('arguments', {}), ensure_ascii=False)}`", "",
            f"{fence}text", content.rstrip(), fence, ""]


def thought_label(seconds: float) -> str:
    """'Thought for 12 s' ('Thoughts' when the time is not known)."""
    if seconds <= 0:
        return "Thoughts"
    return f"Thought for {seconds:.0f} s" if seconds >= 1 else "Thought for under a second"


def export_json(store: Store, conversation_ids: list[int] | None = None) -> str:
    """Every branch of each conversation (all when ``conversation_ids`` is None) as Cove JSON."""
    conversations = []
    for conversation in _chosen(store, conversation_ids):
        keys: dict[int, int] = {}
        messages = []
        for message in store.all_messages(conversation.id):
            keys[message.id] = len(keys) + 1
            messages.append({
                "key": keys[message.id],
                "parent_key": keys.get(message.parent_id) if message.parent_id is not None else None,
                "role": message.role, "content": message.content, "status": message.status,
                "created_at": message.created_at, "stats": _finite(message.stats),
                "reasoning": message.reasoning, "thinking_s": _finite(message.thinking_s),
                **({"tool_calls": _finite(message.tool_calls)} if message.tool_calls else {}),
                **({"tool": _finite(message.tool)} if message.tool else {}),
            })
        conversations.append({
            "title": conversation.title, "created_at": conversation.created_at,
            "updated_at": conversation.updated_at, "pinned": conversation.pinned, "model": conversation.model,
            "settings": _finite(store.get_conversation_settings(conversation.id)),
            "leaf_key": keys.get(conversation.leaf_id) if conversation.leaf_id is not None else None,
            "messages": messages,
        })
    document = {"format": FORMAT, "version": VERSION, "conversations": conversations}
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False) + "\n"


def export_conversations(store: Store, fmt: str, conversation_ids: list[int] | None = None) -> str:
    """Export in ``fmt`` ('md' or 'json')."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (use md or json)")
    return export_markdown(store, conversation_ids) if fmt == "md" else export_json(store, conversation_ids)


def write_export(store: Store, path: Path, fmt: str, conversation_ids: list[int] | None = None) -> int:
    """Write an export to ``path`` atomically; returns how many conversations it holds."""
    count = len(_chosen(store, conversation_ids))
    write_text_atomic(Path(path), export_conversations(store, fmt, conversation_ids))
    return count


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which JSON cannot hold) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# -- import --------------------------------------------------------------------------------------
def import_file(store: Store, path: Path) -> ImportResult:
    """Import a Cove JSON export, a ChatGPT ``conversations.json`` or ChatGPT's export ``.zip``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    if raw.startswith(b"PK\x03\x04"):
        raw = _from_zip(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path.name} is not a text file (not UTF-8 at byte {exc.start}). "
                                "Nothing was imported.") from exc
    return import_text(store, text)


def import_text(store: Store, text: str) -> ImportResult:
    """Import from the JSON text of an export (format recognised automatically)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ImportFormatError(f"The file is not valid JSON{where}. Nothing was imported.") from exc
    skipped = 0
    try:
        if isinstance(data, dict) and "format" in data:
            source, trees = "cove", parse_cove(data)
        elif looks_like_chatgpt(data):
            source, (trees, skipped) = "chatgpt", parse_chatgpt(data)
        else:
            raise ImportFormatError(
                "This file is neither a Cove export (a JSON object with \"format\": \"cove-conversations\") "
                "nor ChatGPT's conversations.json. Nothing was imported.")
        ids = store.import_trees(trees)
    except ImportFormatError:
        raise
    except ValueError as exc:
        raise ImportFormatError(f"The file cannot be imported: {exc}. Nothing was imported.") from exc
    return ImportResult(source, len(ids), sum(len(t.messages) for t in trees), skipped, ids)


def parse_cove(data: dict[str, Any]) -> list[ConversationTree]:
    """The conversations of a Cove JSON document (ValueError with the reason otherwise)."""
    if data.get("format") != FORMAT:
        raise ImportFormatError(f"Unknown export format {data.get('format')!r}; Cove reads {FORMAT!r} "
                                "and ChatGPT's conversations.json. Nothing was imported.")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"the format version {version!r} is not valid")
    if version > VERSION:
        raise ImportFormatError(f"This export was made by a newer Cove (format version {version}); this Cove "
                                f"reads version {VERSION}. Update Cove to import it. Nothing was imported.")
    conversations = data.get("conversations")
    if not isinstance(conversations, list):
        raise ValueError("'conversations' must be a list")
    return [_cove_tree(c, n) for n, c in enumerate(conversations, 1)]


def _cove_tree(c: Any, n: int) -> ConversationTree:
    where = f"conversation {n}"
    if not isinstance(c, dict):
        raise ValueError(f"{where} is not an object")
    title = _field(c, "title", str, where)
    messages = _field(c, "messages", list, where)
    settings = c.get("settings", {})
    if not isinstance(settings, dict):
        raise ValueError(f"{where}: 'settings' must be an object")
    tree = ConversationTree(title, _time(c, "created_at", where), _time(c, "updated_at", where),
                            leaf_key=_key(c.get("leaf_key"), f"{where} leaf_key"), pinned=bool(c.get("pinned")),
                            model=str(c.get("model") or ""), settings=settings)
    for i, m in enumerate(messages, 1):
        at = f"{where}, message {i}"
        if not isinstance(m, dict):
            raise ValueError(f"{at} is not an object")
        key = _key(m.get("key"), f"{at} key")
        if key is None:
            raise ValueError(f"{at} has no key")
        stats = m.get("stats", {})
        if not isinstance(stats, dict):
            raise ValueError(f"{at}: 'stats' must be an object")
        reasoning, seconds = m.get("reasoning", ""), m.get("thinking_s", 0.0)
        if not isinstance(reasoning, str) or not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ValueError(f"{at}: 'reasoning' must be text and 'thinking_s' a number")
        calls, tool = m.get("tool_calls", []), m.get("tool", {})
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls) or not isinstance(tool, dict):
            raise ValueError(f"{at}: 'tool_calls' must be a list of objects and 'tool' an object")
        tree.messages.append(TreeMessage(key, _key(m.get("parent_key"), f"{at} parent_key"),
                                         _field(m, "role", str, at), _field(m, "content", str, at),
                                         str(m.get("status", "complete")), _time(m, "created_at", at), stats,
                                         reasoning, float(seconds), calls, tool))
    tree.messages = _parents_first(tree.messages, where)
    return tree


def _parents_first(messages: list[TreeMessage], where: str) -> list[TreeMessage]:
    """Reorder (stably) so that every parent comes before its children; refuse loops and strays."""
    keys = {m.key for m in messages}
    placed: set[str] = set()
    ordered: list[TreeMessage] = []
    pending = messages
    while pending:
        waiting = []
        for m in pending:
            if m.parent_key is not None and m.parent_key not in keys:
                raise ValueError(f"{where}: message {m.key} refers to a parent {m.parent_key} that does not exist")
            if m.parent_key is None or m.parent_key in placed:
                ordered.append(m)
                placed.add(m.key)
            else:
                waiting.append(m)
        if len(waiting) == len(pending):
            raise ValueError(f"{where}: messages {', '.join(m.key for m in waiting[:5])} form a loop")
        pending = waiting
    return ordered


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"{where}: '{name}' is missing or not a {kind.__name__}")
    return value


def _time(obj: dict[str, Any], name: str, where: str) -> float:
    value = obj.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{where}: '{name}' must be a number (seconds since 1970)")
    return float(value)


def _key(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where} must be a number or a string")
    return str(value)


def _from_zip(raw: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
            if not names:
                raise ImportFormatError("The ZIP file holds no conversations.json. Nothing was imported.")
            return archive.read(min(names, key=len))
    except zipfile.BadZipFile as exc:
        raise ImportFormatError(f"The ZIP file is damaged ({exc}). Nothing was imported.") from exc
