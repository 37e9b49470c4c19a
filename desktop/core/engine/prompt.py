"""Stored messages to the list of role/content dicts a chat template renders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from desktop.core.system.logs import content

logger = logging.getLogger(__name__)


def messages_for_model(history: Sequence[Any], system_prompt: str = "") -> list[dict[str, str]]:
    """Turn stored messages (objects with ``role``, ``content`` and maybe ``reasoning``) into the
    template's input; an answer's reasoning goes as ``reasoning_content``.

    Empty answers (a stopped answer with no text) are left out; the system prompt comes first.
    """
    result: list[dict[str, str]] = []
    if system_prompt.strip():
        result.append({"role": "system", "content": system_prompt.strip()})
    for message in history:
        if message.role in ("user", "assistant", "system") and (message.content or message.role == "user"):
            entry = {"role": message.role, "content": message.content}
            if getattr(message, "reasoning", ""):  # the runtime keeps it for templates that read it
                entry["reasoning_content"] = message.reasoning
            result.append(entry)
    if result:
        logger.info("prompt: %d messages, the last (%s) %s", len(result), result[-1]["role"],
                    content(result[-1]["content"]))
    return result
