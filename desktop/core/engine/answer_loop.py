"""One answer's token loop: pieces of reasoning and answer, a thinking budget, *Answer now*.

The loop samples with :func:`desktop.core.engine.decode.generate_tokens`, holds back a possible stop
string, and hands each token's text to the :class:`~desktop.core.engine.output_parser.OutputParser`.
When the model has thought for ``budget`` tokens, or the person asked for the answer, the thinking
block is closed the way its format does (``</think>`` and a blank line; harmony's switch to the
final channel), the closing tokens are appended, and sampling goes on from there, as llama.cpp's
``--reasoning-budget`` does. The KV cache keeps everything already evaluated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from desktop.core.engine.decode import StopText, generate_tokens, seed_sampler
from desktop.core.engine.output_parser import ANSWER, REASONING, OutputParser, Piece
from desktop.core.engine.thinking_format import ThinkingFormat
from desktop.core.system.settings import GenerationSettings
from desktop.core.tools.call_formats import ToolCallFormat, parse_calls
from desktop.core.tools.specs import TOOL_CALL, ToolCall


@dataclass
class ThinkingRequest:
    """What the person asked of a thinking model for one answer. ``budget``: most reasoning
    tokens (0: no limit); setting ``answer_now`` closes the thinking at once."""

    think: bool = True
    effort: str = ""
    budget: int = 0
    answer_now: threading.Event = field(default_factory=threading.Event)


@dataclass
class AnswerCounts:
    """What the loop saw: tokens of reasoning and of answer, how the thinking ended, its time."""

    reasoning_tokens: int = 0
    answer_tokens: int = 0
    generated: int = 0
    closed_by: str = ""          # "", "budget" or "answer_now"
    thinking_s: float = 0.0
    finish: str = "stop"         # "stop", "length" or "cancelled"
    first_token_at: float = 0.0


@dataclass
class AnswerLoop:
    """Runs one answer on ``llm`` (a ``llama_cpp.Llama``) from ``prompt``."""

    llm: Any
    fmt: ThinkingFormat
    request: ThinkingRequest
    stop_ids: set[int]
    stop_strings: Sequence[str]
    special: bool                 # the format's markers are special tokens: decode them as text
    on_first_token: Callable[[], None] = lambda: None
    counts: AnswerCounts = field(default_factory=AnswerCounts)
    scanner: Any = None           # a CallScanner over the answer text when tools are offered
    tool_format: ToolCallFormat | None = None
    grammar: Any = None           # a LlamaGrammar that sampling must follow (a required call)
    calls: list[ToolCall] = field(default_factory=list)
    _thinking_from: float = 0.0

    def run(self, prompt: list[int], settings: GenerationSettings, max_tokens: int,
            cancel: threading.Event) -> Iterator[Piece]:
        """Yield the pieces of the answer; ``counts`` is filled as it goes."""
        parser = OutputParser(self.fmt, self.request.think)
        stops = StopText(self.stop_strings)
        generated: list[int] = []
        seed_sampler(self.llm, settings.seed)
        closing = "start"
        while closing:
            closing = ""
            for token in generate_tokens(self.llm, prompt + generated, settings,
                                         max_tokens=max_tokens - len(generated), stop_ids=self.stop_ids,
                                         cancel=cancel, special=self.special, grammar=self.grammar):
                if not generated:
                    self.counts.first_token_at = time.perf_counter()
                    self.on_first_token()
                generated.append(token.id)
                thinking = parser.in_reasoning
                pieces = self._route(parser.feed(stops.feed(token.text)))
                self._count(thinking or parser.in_reasoning)
                yield from pieces
                if stops.stopped:
                    break
                closing = self._closing(parser)
                if closing:
                    break
            if closing and not cancel.is_set() and len(generated) < max_tokens:
                yield from parser.feed(closing)  # the markers are consumed: nothing to show
                generated += self.llm.tokenize(closing.encode("utf-8"), add_bos=False, special=True)
            else:
                closing = ""
        yield from self._route(parser.feed(stops.flush()) + parser.finish(), final=True)
        self.counts.generated = len(generated)
        self.counts.finish = ("cancelled" if cancel.is_set() else
                              "stop" if stops.stopped or len(generated) < max_tokens else "length")

    def _route(self, pieces: list[Piece], final: bool = False) -> list[Piece]:
        """The answer text through the call scanner (reasoning never: a call in thinking is no
        call); each complete call read into ``calls``."""
        if self.scanner is None and self.tool_format is None:
            return pieces
        routed: list[Piece] = []
        for piece in pieces:
            scan = self.scanner is not None and piece.kind == ANSWER
            routed += self.scanner.feed(piece.text) if scan else [piece]
        if final and self.scanner is not None:
            routed += self.scanner.finish()
        for piece in routed:
            if piece.kind == TOOL_CALL and self.tool_format is not None:
                for call in parse_calls(self.tool_format, piece.text):
                    number = f"call_{len(self.calls) + 1}"
                    self.calls.append(call if call.id else ToolCall(call.name, call.arguments, number, call.error,
                                                                    call.raw))
        return routed

    def _count(self, thinking: bool) -> None:
        now = time.perf_counter()
        if thinking:
            self.counts.reasoning_tokens += 1
            self._thinking_from = self._thinking_from or now
            self.counts.thinking_s = now - self._thinking_from
        else:
            self.counts.answer_tokens += 1

    def _closing(self, parser: OutputParser) -> str:
        """The text that closes the thinking now (budget spent, or *Answer now*), else ''."""
        if not parser.in_reasoning:
            return ""
        if self.request.answer_now.is_set():
            self.counts.closed_by = "answer_now"
        elif self.request.budget and self.counts.reasoning_tokens >= self.request.budget:
            self.counts.closed_by = "budget"
        else:
            return ""
        return parser.closing_text()


def is_reasoning(piece: Piece) -> bool:
    """True for a piece of the model's thinking."""
    return piece.kind == REASONING
