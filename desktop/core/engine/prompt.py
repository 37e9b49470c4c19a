"""Stored messages to the list of role/content dicts a chat template renders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from desktop.core.system.logs import content

logger = logging.getLogger(__name__)


def messages_for_model(history: Sequence[Any], system_prompt: str = "") -> list[dict[str, Any]]:
    """Turn stored messages (objects with ``role``, ``content`` and maybe ``reasoning``,
    ``tool_calls`` and ``tool``) into the template's input; an answer's reasoning goes as
    ``reasoning_content``, its tool calls in the OpenAI shape templates read (``tool_calls`` of
    ``{"id", "type": "function", "function": {"name", "arguments"}}``, arguments as an object), and
    a tool's result as a ``tool`` message with its ``tool_call_id`` and ``name``.

    Empty answers (a stopped answer with no text and no calls) are left out; the system prompt
    comes first.
    """
    result: list[dict[str, Any]] = []
    if system_prompt.strip():
        result.append({"role": "system", "content": system_prompt.strip()})
    for message in history:
        calls = getattr(message, "tool_calls", None) or []
        if message.role == "tool":
            tool = getattr(message, "tool", None) or {}
            result.append({"role": "tool", "tool_call_id": str(tool.get("call_id", "")),
                           "name": str(tool.get("name", "")), "content": message.content})
        elif message.role in ("user", "assistant", "system") and (message.content or message.role == "user" or calls):
            entry: dict[str, Any] = {"role": message.role, "content": message.content}
            if getattr(message, "reasoning", ""):  # the runtime keeps it for templates that read it
                entry["reasoning_content"] = message.reasoning
            if calls:
                entry["tool_calls"] = [template_call(call) for call in calls]
            result.append(entry)
    if result:
        logger.info("prompt: %d messages, the last (%s) %s", len(result), result[-1]["role"],
                    content(str(result[-1]["content"])))
    return result


def template_call(call: dict[str, Any]) -> dict[str, Any]:
    """A stored call (``id``, ``name``, ``arguments``) as chat templates read it."""
    arguments = call.get("arguments")
    return {"id": str(call.get("id", "")), "type": "function",
            "function": {"name": str(call.get("name", "")),
                         "arguments": arguments if isinstance(arguments, dict) else {}}}
