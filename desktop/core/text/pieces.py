"""Typed pieces of a model's streamed output (plain data, shared by the engine's output parser
and the tool-call scanner).

``kind`` is one of :data:`REASONING` (the model's thinking), :data:`ANSWER` (text shown as the
answer) or :data:`TOOL_CALL` (one complete call section, its markers included, as the model wrote it).
"""

from __future__ import annotations

from dataclasses import dataclass

REASONING, ANSWER = "reasoning", "answer"
TOOL_CALL = "tool_call"


@dataclass(frozen=True)
class Piece:
    """A piece of an answer as it streams: ``kind`` is 'reasoning', 'answer' or 'tool_call'."""

    kind: str
    text: str
