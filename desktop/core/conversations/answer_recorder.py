"""Keeps a streaming answer on disk: flushed at short intervals, marked incomplete until done."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from desktop.core.conversations.store import COMPLETE, STREAMING
from desktop.core.system.logs import content

# write(content, reasoning, status, stats): persists the answer's current text and reasoning
# (status/stats None = unchanged)
WriteFn = Callable[[str, str, str | None, dict[str, Any] | None], None]
REASONING = "reasoning"  # the kind of a piece of thinking (desktop.core.engine.output_parser's name)

FLUSH_INTERVAL_S = 0.5
logger = logging.getLogger(__name__)


class AnswerRecorder:
    """Accumulates pieces of an answer (its text, and a thinking model's reasoning apart) and
    writes them through ``write`` at most every ``interval`` seconds, so a crash loses at most
    that much of either."""

    def __init__(self, write: WriteFn, interval: float = FLUSH_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._parts: list[str] = []
        self._reasoning: list[str] = []
        self._last_flush = clock()
        self._dirty = False
        self.flushes = 0

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self._parts)

    @property
    def reasoning(self) -> str:
        """The reasoning so far."""
        return "".join(self._reasoning)

    def add(self, piece: str, kind: str = "answer") -> None:
        """Append a piece of the answer (or of the reasoning, for ``kind`` 'reasoning'); flush
        when the interval has passed."""
        (self._reasoning if kind == REASONING else self._parts).append(piece)
        self._dirty = True
        if self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write the text now (still marked as streaming)."""
        if self._dirty:
            self._write(self.text, self.reasoning, STREAMING, None)
            self.flushes += 1
            self._dirty = False
        self._last_flush = self._clock()

    def finish(self, status: str = COMPLETE, stats: dict[str, Any] | None = None) -> str:
        """Write the final text with its status and figures; returns the text."""
        text = self.text
        logger.info("answer %s: %s (reasoning %s)", status, content(text), content(self.reasoning))
        self._write(text, self.reasoning, status, stats or {})
        self._dirty = False
        return text
