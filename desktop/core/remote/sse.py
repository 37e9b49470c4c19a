"""Server-Sent Events, as OpenAI-compatible engines stream them: ``data:`` lines, events ended by a
blank line, comment lines (``: keep-alive``) ignored, ``[DONE]`` at the end."""

from __future__ import annotations

import json
from typing import Any

DONE = object()  # the [DONE] event


class SSEError(ValueError):
    """An event that is not the JSON the engine should send."""


class SSEParser:
    """Feed it lines (without their line ending); it returns the events each completes."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> list[Any]:
        """The JSON objects (or :data:`DONE`) completed by ``line``."""
        if line.startswith(":"):
            return []
        if line == "":
            return self._flush()
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []

    def _flush(self) -> list[Any]:
        if not self._data:
            return []
        text, self._data = "\n".join(self._data), []
        if text.strip() == "[DONE]":
            return [DONE]
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SSEError(f"an event is not JSON ({exc.msg}: {text[:80]!r})") from exc
        if not isinstance(event, dict):
            raise SSEError(f"an event is not a JSON object: {text[:80]!r}")
        return [event]

    def finish(self) -> list[Any]:
        """Events left when the stream ends without a blank line."""
        return self._flush()
