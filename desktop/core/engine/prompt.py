"""Stored messages to the list of role/content dicts a chat template renders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def messages_for_model(history: Sequence[Any], system_prompt: str = "") -> list[dict[str, str]]:
    """Turn stored messages (objects with ``role`` and ``content``) into the template's input.

    Empty answers (a stopped answer with no text) are left out; the system prompt comes first.
    """
    result: list[dict[str, str]] = []
    if system_prompt.strip():
        result.append({"role": "system", "content": system_prompt.strip()})
    for message in history:
        if message.role in ("user", "assistant", "system") and (message.content or message.role == "user"):
            result.append({"role": message.role, "content": message.content})
    return result
