"""Generated text into typed pieces: reasoning apart from the answer, per thinking format.

The parser is fed the text of each new token as it comes and returns the pieces it can be sure
of; a marker split over several tokens is held back until it is complete (or proves not to be
one), so the split is the same wherever the token boundaries fall. Markers are never shown.
Whitespace right after a marker (the blank line after ``</think>``) is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from desktop.core.engine.thinking_format import HARMONY, TAGS, ThinkingFormat
from desktop.core.text.pieces import ANSWER, REASONING, TOOL_CALL, Piece

__all__ = ["ANSWER", "REASONING", "TOOL_CALL", "OutputParser", "Piece", "answer_text", "split_text"]

# gpt-oss's harmony format: every marker is one special token.
HARMONY_START, HARMONY_CHANNEL, HARMONY_MESSAGE = "<|start|>", "<|channel|>", "<|message|>"
HARMONY_ENDS = ("<|end|>", "<|return|>", "<|call|>")
HARMONY_MARKERS = (HARMONY_START, HARMONY_CHANNEL, HARMONY_MESSAGE, *HARMONY_ENDS, "<|constrain|>")
HARMONY_TO_FINAL = "<|end|><|start|>assistant<|channel|>final<|message|>"


def _held_prefix(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that could still grow into one of ``markers``."""
    longest = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-n:]):
                longest = n
                break
    return longest


class OutputParser:
    """Splits one answer's generated text into reasoning and answer pieces.

    ``thinking``: whether thinking was asked for; with a format whose generation prompt opens the
    block (R1 style) the output then starts inside it.
    """

    def __init__(self, fmt: ThinkingFormat, thinking: bool = True) -> None:
        self.fmt = fmt
        self._buffer = ""
        self._kind = REASONING if fmt.kind == TAGS and fmt.opened_by_prompt and thinking else ANSWER
        self._trim = True
        self._header: str | None = None  # harmony: the header being read, None inside a message
        self._dropping = False           # harmony: between a message's end and the next start
        self._call: list[str] | None = None  # harmony: the header and body of a tool call being read
        self._fresh = fmt.kind == HARMONY    # harmony: nothing read yet (the header may start at once)
        self.reasoning_seen = self._kind == REASONING

    @property
    def in_reasoning(self) -> bool:
        """True while the model is thinking."""
        return self._kind == REASONING

    def closing_text(self) -> str:
        """What ends the thinking block in this format (injected by a thinking budget)."""
        if self.fmt.kind == HARMONY:
            return HARMONY_TO_FINAL
        return f"{self.fmt.close}\n\n" if self.fmt.kind == TAGS else ""

    def feed(self, text: str) -> list[Piece]:
        """The pieces that ``text`` (the next bit of output) completes."""
        self._buffer += text
        if self.fmt.kind == HARMONY:
            return self._feed_harmony(final=False)
        if self.fmt.kind == TAGS:
            return self._feed_tags(final=False)
        return self._emit(self._take(len(self._buffer)))

    def finish(self) -> list[Piece]:
        """Whatever is still held back, at the end of the output."""
        if self.fmt.kind == HARMONY:
            pieces = self._feed_harmony(final=True)
            if self._call is not None:  # a call cut off by the end of the output
                call, self._call = "".join(self._call), None
                pieces.append(Piece(TOOL_CALL, call))
            return pieces
        if self.fmt.kind == TAGS:
            return self._feed_tags(final=True)
        return self._emit(self._take(len(self._buffer)))

    # -- shared ---------------------------------------------------------------------------------
    def _take(self, n: int) -> str:
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        return taken

    def _emit(self, text: str) -> list[Piece]:
        if self._trim:
            text = text.lstrip()
            if not text:
                return []
            self._trim = False
        return [Piece(self._kind, text)] if text else []

    def _switch(self, kind: str) -> None:
        self._kind = kind
        self._trim = True
        if kind == REASONING:
            self.reasoning_seen = True

    # -- <think>…</think> and other marker pairs ------------------------------------------------
    def _feed_tags(self, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        while True:
            if self._kind == REASONING and self._trim and self.fmt.open:
                # At the start of a block the prompt opened, the model may open it once more.
                head = self._buffer.lstrip()
                if head.startswith(self.fmt.open):
                    self._buffer = head[len(self.fmt.open):]
                    continue
                if head and not final and self.fmt.open.startswith(head):
                    return pieces
            # Inside the block only its end counts; outside, an opening starts one and a stray
            # closing (a model that closes twice) is dropped: markers are never shown.
            markers = (self.fmt.close,) if self._kind == REASONING else (self.fmt.open, self.fmt.close)
            if not any(m and m[0] in self._buffer for m in markers):  # the common case: plain text
                pieces += self._emit(self._take(len(self._buffer)))
                return pieces
            found = [(self._buffer.find(m), m) for m in markers if m and m in self._buffer]
            if not found:
                keep = 0 if final else _held_prefix(self._buffer, tuple(m for m in markers if m))
                pieces += self._emit(self._take(len(self._buffer) - keep))
                return pieces
            at, marker = min(found)
            pieces += self._emit(self._take(at))
            self._take(len(marker))
            if marker == self.fmt.close and self._kind == REASONING:
                self._switch(ANSWER)
            elif marker != self.fmt.close:
                self._switch(REASONING)

    # -- harmony channels -------------------------------------------------------------------------
    def _feed_harmony(self, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        if self._fresh:
            # The prompt ends with ``<|start|>assistant``: the output may go on with that header's
            # recipient (`` to=functions.NAME<|channel|>commentary json<|message|>…``).
            head = self._buffer.lstrip()
            if not final and len(head) < 3 and "to=".startswith(head):
                return pieces
            self._fresh = False
            if head.startswith("to="):
                self._header = ""
        while True:
            found = [(self._buffer.find(m), m) for m in HARMONY_MARKERS if m in self._buffer]
            if not found:
                keep = 0 if final else _held_prefix(self._buffer, HARMONY_MARKERS)
                pieces += self._harmony_text(self._take(len(self._buffer) - keep))
                return pieces
            at, marker = min(found)
            pieces += self._harmony_text(self._take(at))
            self._take(len(marker))
            pieces += self._harmony_marker(marker)

    def _harmony_text(self, text: str) -> list[Piece]:
        if self._header is not None:
            self._header += text
            return []
        if self._call is not None:
            self._call.append(text)
            return []
        return [] if self._dropping else self._emit(text)

    def _harmony_marker(self, marker: str) -> list[Piece]:
        """Act on one harmony marker; a tool call (a message ``to=functions.NAME``, never in the
        analysis channel) comes out whole, as one piece, when its message ends."""
        if marker == HARMONY_START:
            self._header = ""
        elif marker == HARMONY_CHANNEL:
            self._header = (self._header or "") + " channel="
        elif marker == "<|constrain|>" and self._header is not None:
            self._header += " constrain="
        elif marker == HARMONY_MESSAGE:
            header, self._header = self._header or "", None
            self._dropping = False
            if "to=functions." in header and "channel=analysis" not in header:
                self._call = [header.strip(), "<|message|>"]
                return []
            self._switch(REASONING if "channel=analysis" in header else ANSWER)
        elif marker in HARMONY_ENDS:
            self._dropping = True
            self._header = None
            if self._call is not None:
                call, self._call = "".join(self._call) + "<|call|>", None
                return [Piece(TOOL_CALL, call)]
        return []


def split_text(fmt: ThinkingFormat, text: str, thinking: bool = True) -> tuple[str, str]:
    """(reasoning, answer) of a whole output at once, as the streaming parser splits it."""
    parser = OutputParser(fmt, thinking)
    pieces = parser.feed(text) + parser.finish()
    reasoning = "".join(p.text for p in pieces if p.kind == REASONING)
    answer = "".join(p.text for p in pieces if p.kind == ANSWER)
    return reasoning.rstrip(), answer.rstrip()


def answer_text(pieces: Iterable[Piece]) -> str:
    """The answer alone, from a stream of pieces (the reasoning left out)."""
    return "".join(p.text for p in pieces if p.kind == ANSWER)
