"""Reading ChatGPT's data export (``conversations.json``) into conversation trees.

The export is a list of conversations, each with ``title``, ``create_time``, ``update_time``,
``current_node`` (the tip of the branch that was shown) and ``mapping``: node id ->
``{"message": {...} | null, "parent": id | null, "children": [ids]}``. A regenerated answer or an
edited question is a second child of the same parent, so the tree maps onto Cove's directly.

What is kept: the text of user, assistant and (visible, non-empty) system messages, every branch,
in the export's order (a node's children in their listed order, depth first, so sibling versions
keep their order and the newest branch gets the highest ids). What is left out, and counted as
skipped: tool messages and the assistant's calls to tools (``recipient`` other than ``all``),
hidden context (``is_visually_hidden_from_conversation``, ``user_editable_context``) and empty
messages; their children hang from the nearest kept ancestor. Reasoning (``thoughts`` nodes, and
the time from ``reasoning_recap``) becomes the reasoning of the answer that follows it. Non-text
parts of a message (images, files, audio) become a short placeholder such
as ``[image]``; an audio part's transcription is kept as text.

Errors are ``ValueError`` with a description; :mod:`desktop.core.conversations.export_import` adds context.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from desktop.core.conversations.records import COMPLETE, STOPPED, ConversationTree, TreeMessage

_REASONING_CONTENT = {"thoughts", "reasoning_recap"}
_DROPPED_CONTENT = {"thoughts", "reasoning_recap", "user_editable_context", "model_editable_context",
                    "execution_output", "tether_browsing_display", "tether_quote", "system_error"}
_PLACEHOLDERS = {"image_asset_pointer": "[image]", "audio_asset_pointer": "[audio]",
                 "real_time_user_audio_video_asset_pointer": "[audio/video]", "file_asset_pointer": "[file]"}


def looks_like_chatgpt(data: Any) -> bool:
    """True for ChatGPT's export: a list of conversations with a ``mapping`` (or one of them)."""
    if isinstance(data, dict):
        return isinstance(data.get("mapping"), dict)
    return isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data)


def parse_chatgpt(data: Any) -> tuple[list[ConversationTree], int]:
    """The conversations of a ChatGPT export, and how many messages were skipped."""
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("a ChatGPT export is a list of conversations")
    trees, skipped = [], 0
    for n, conversation in enumerate(items, 1):
        try:
            tree, dropped = _conversation(conversation)
        except ValueError as exc:
            title = conversation.get("title") if isinstance(conversation, dict) else None
            raise ValueError(f"conversation {n}" + (f" ({title!r})" if title else "") + f": {exc}") from exc
        trees.append(tree)
        skipped += dropped
    return trees, skipped


def _conversation(conversation: Any) -> tuple[ConversationTree, int]:
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise ValueError("it has no message mapping")
    mapping: dict[str, Any] = conversation["mapping"]
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            raise ValueError(f"node {node_id!r} is not an object")
    created = _number(conversation.get("create_time")) or 0.0
    updated = _number(conversation.get("update_time")) or created
    title = conversation.get("title")
    title = " ".join(title.split()) if isinstance(title, str) and title.strip() else "Imported chat"
    messages: list[TreeMessage] = []
    effective: dict[str, str | None] = {}  # node id -> key of itself or its nearest kept ancestor
    thinking: dict[str, tuple[str, float]] = {}  # node id -> reasoning waiting for its answer
    skipped = 0
    for node_id, parent in _depth_first(mapping):
        parent_key = effective.get(parent) if parent is not None else None
        message = mapping[node_id].get("message")
        waiting = thinking.get(parent, ("", 0.0)) if parent is not None else ("", 0.0)
        reasoning = _reasoning(message, waiting)
        if reasoning is not None:
            thinking[node_id], effective[node_id] = reasoning, parent_key
            continue
        converted = _message(message, created)
        if converted is None:
            skipped += message is not None
            effective[node_id] = parent_key
            thinking[node_id] = waiting
            continue
        role, text, status, when = converted
        key = str(len(messages) + 1)
        carried = waiting if role == "assistant" else ("", 0.0)
        messages.append(TreeMessage(key, parent_key, role, text, status, when, {}, carried[0], carried[1]))
        effective[node_id] = key
    current = conversation.get("current_node")
    leaf = effective.get(current) if isinstance(current, str) else None
    if leaf is None and messages:
        leaf = messages[-1].key
    return ConversationTree(title, created, max(updated, created), messages, leaf), skipped


def _depth_first(mapping: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(node id, parent node id) pairs, parents first, depth first, children in their listed order
    (nodes a parent does not list come after the listed ones). Cycles and dangling links are cut."""
    children: dict[str | None, list[str]] = {}
    for node_id, node in mapping.items():
        parent = node.get("parent")
        children.setdefault(parent if parent in mapping else None, []).append(node_id)
    for parent, kids in children.items():  # the parent's own order first, then any it forgot
        listed = mapping[parent].get("children") if parent is not None else None
        if isinstance(listed, list):
            order = {c: i for i, c in enumerate(listed) if isinstance(c, str)}
            kids.sort(key=lambda c: order.get(c, len(order)))
    seen: set[str] = set()
    stack: list[tuple[str, str | None]] = [(r, None) for r in reversed(children.get(None, []))]
    while stack:
        node_id, parent = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        yield node_id, parent
        stack.extend((c, node_id) for c in reversed(children.get(node_id, [])))


def _reasoning(message: Any, waiting: tuple[str, float]) -> tuple[str, float] | None:
    """For a ``thoughts`` or ``reasoning_recap`` node: the reasoning so far, with it added."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, dict) or content.get("content_type") not in _REASONING_CONTENT:
        return None
    text, seconds = waiting
    if content.get("content_type") == "thoughts" and isinstance(content.get("thoughts"), list):
        parts = [t.get("content") or t.get("summary") for t in content["thoughts"] if isinstance(t, dict)]
        text = "\n\n".join(p for p in [text, *parts] if isinstance(p, str) and p.strip())
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    seconds = _number(metadata.get("finished_duration_sec")) or seconds
    return text, seconds


def _message(message: Any, fallback_time: float) -> tuple[str, str, str, float] | None:
    """(role, text, status, time) of a message worth keeping, else None."""
    if not isinstance(message, dict):
        return None
    author = message.get("author") if isinstance(message.get("author"), dict) else {}
    role = author.get("role")
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    if role not in ("user", "assistant", "system") or metadata.get("is_visually_hidden_from_conversation"):
        return None
    if role == "assistant" and message.get("recipient") not in (None, "all"):
        return None  # a call to a tool (code, browsing, image generation)
    text = _text(message.get("content"))
    if not text or not text.strip():
        return None
    status = COMPLETE if message.get("status") in (None, "finished_successfully") else STOPPED
    return role, text, status, _number(message.get("create_time")) or fallback_time


def _text(content: Any) -> str | None:
    if not isinstance(content, dict):
        return None
    kind = content.get("content_type")
    if kind in _DROPPED_CONTENT:
        return None
    if kind == "code" and isinstance(content.get("text"), str):
        return f"```{content.get('language') or ''}\n{content['text']}\n```"
    parts = content.get("parts")
    if isinstance(parts, list):
        pieces = [_part(p) for p in parts]
        return "\n\n".join(p for p in pieces if p)
    return content.get("text") if isinstance(content.get("text"), str) else None


def _part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = str(part.get("content_type") or "attachment")
    if isinstance(part.get("text"), str) and part["text"].strip():  # audio transcription and the like
        return part["text"]
    return _PLACEHOLDERS.get(kind, f"[{kind.replace('_', ' ')}]")


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None
