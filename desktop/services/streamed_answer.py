"""The answer being written, as the window shows it: its text and a thinking model's reasoning apart."""

from __future__ import annotations

import time
from collections.abc import Callable

from desktop.core.engine.output_parser import ANSWER, REASONING


class StreamedAnswer:
    """Collects the streamed pieces of one answer and times its thinking."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._thinking_from = 0.0
        self._thinking_to = 0.0

    def add(self, kind: str, text: str) -> None:
        """Append a piece of ``kind`` ('reasoning' or 'answer')."""
        if kind == REASONING:
            self._reasoning.append(text)
            now = self._clock()
            self._thinking_from = self._thinking_from or now
            self._thinking_to = now
        elif kind == ANSWER:
            self._answer.append(text)

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self._answer)

    @property
    def reasoning(self) -> str:
        """The reasoning so far."""
        return "".join(self._reasoning)

    @property
    def thinking(self) -> bool:
        """True while the model thinks (reasoning came, no answer yet)."""
        return bool(self._reasoning) and not self._answer

    def thinking_seconds(self) -> float:
        """How long the model has thought (until now while it still thinks)."""
        if not self._thinking_from:
            return 0.0
        end = self._clock() if self.thinking else self._thinking_to
        return max(0.0, end - self._thinking_from)
