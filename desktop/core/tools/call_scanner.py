"""Finds tool calls in an answer as it streams.

The scanner is fed the answer's text only (the output parser has taken the thinking out), so a
call written while thinking is never taken. A call section (from its format's opening marker to
its closing one, to the end of its JSON for the formats without a closing marker, or to the end
of the output) is held back and handed over whole as one ``tool_call`` piece; a marker split
over several tokens is held back until it is complete or proves not to be one, so the result is
the same wherever the token boundaries fall. For the formats whose call may be a bare JSON
answer (Llama 3's, the generic one), an answer that starts like JSON (``{``, ``[`` or a ```json
fence) is held until it is a whole call, or given back as text as soon as it proves not to be
one (its first key is not a call's, it is not an object): ordinary answers keep streaming.
"""

from __future__ import annotations

import dataclasses
import json
import re

from desktop.core.text.pieces import ANSWER, TOOL_CALL, Piece
from desktop.core.tools.call_formats import ToolCallFormat, parse_calls
from desktop.core.tools.specs import ToolCall

FENCE = "```json"
# The keys a call object may start with; any other first key makes a JSON answer plain text.
CALL_KEYS = ("name", "type", "function", "tool_name", "id", "tool_call_id", "arguments", "parameters")
_PASS_THROUGH = ("none", "harmony")  # no calls in the answer text (harmony's come from the output parser)
_NEVER = 1 << 62  # a start past any text: a section that runs to the end of the output
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)("?)')


def _held_prefix(text: str, marker: str) -> int:
    """Length of the longest tail of ``text`` that could still grow into ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


class _JsonEnd:
    """Where a JSON object or array that opens at ``start`` ends, read as more text comes
    (strings and escapes respected, each character looked at once)."""

    def __init__(self, start: int) -> None:
        self.pos, self.depth, self.in_string, self.escaped = start, 0, False, False

    def end(self, text: str) -> int | None:
        """The index just past the value, or None while it is still open."""
        for i in range(self.pos, len(text)):
            char = text[i]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                if self.depth <= 0:
                    return i + 1
        self.pos = len(text)
        return None


def could_be_call(text: str) -> bool:
    """False once a bare answer (``{``, ``[`` or a ```json fence first) can no longer be a call."""
    rest = text[len(FENCE):].lstrip() if text.startswith(FENCE) else text
    if rest.startswith("["):
        rest = rest[1:].lstrip()
    if not rest:
        return True
    if rest[0] != "{":
        return False
    rest = rest[1:].lstrip()
    if not rest:
        return True
    key = _KEY.match(rest)
    if key is None:
        return False
    return any(k == key.group(1) if key.group(2) else k.startswith(key.group(1)) for k in CALL_KEYS)


def is_call(fmt: ToolCallFormat, text: str) -> bool:
    """True when a whole bare JSON answer is a call: every object in it names a tool and has its
    arguments, and it reads as calls (an ordinary JSON answer stays an answer)."""
    body = text.strip().removeprefix(FENCE).removesuffix("```").strip()
    try:
        value = json.loads(body)
    except ValueError:
        return False
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str)
                               and ("arguments" in i or "parameters" in i) for i in items) and \
        all(not c.error for c in parse_calls(fmt, text))


class CallScanner:
    """Splits an answer's text into answer pieces and whole call sections; ``calls`` gathers the
    calls read from them, numbered ``call_1``, ``call_2``… where the model gave no id."""

    def __init__(self, fmt: ToolCallFormat) -> None:
        self.fmt = fmt
        self.calls: list[ToolCall] = []
        self._buffer = ""
        self._inside = False      # in a call section that opened with the format's marker
        self._holding = False     # in an answer that starts like a bare JSON call
        self._end: _JsonEnd | None = None
        self._searched = 0        # how far the section was searched for its closing marker
        self._started = False     # some answer text (not whitespace) was given out
        self._after_call = False  # whitespace right after a call is dropped

    def feed(self, text: str) -> list[Piece]:
        """The pieces that ``text`` (more of the answer) completes."""
        if self.fmt.kind in _PASS_THROUGH:
            return [Piece(ANSWER, text)] if text else []
        self._buffer += text
        return self._scan(final=False)

    def finish(self) -> list[Piece]:
        """Whatever is still held, at the end of the output."""
        return [] if self.fmt.kind in _PASS_THROUGH else self._scan(final=True)

    def _scan(self, final: bool) -> list[Piece]:
        pieces: list[Piece] = []
        while True:
            if self._holding:
                if not self._close_bare(pieces, final):
                    return pieces
                continue
            if self._inside:
                if not self._close_section(pieces, final):
                    return pieces
                continue
            bare = self._bare_start(final)
            if bare is None:
                return pieces
            if bare:
                self._buffer, self._holding, self._end = self._buffer.lstrip(), True, None
                continue
            if not self._open_section(pieces, final):
                return pieces

    def _open_section(self, pieces: list[Piece], final: bool) -> bool:
        """Give out the text before the next opening marker and enter its section; False when
        there is none (the text, less a tail that may grow into the marker, is given out)."""
        opening = self.fmt.open
        at = self._buffer.find(opening) if opening and opening[0] in self._buffer else -1
        if at < 0:
            keep = 0 if final or not opening else _held_prefix(self._buffer, opening)
            if self.fmt.bare_json and not self._started and not final and not self._buffer.strip():
                keep = len(self._buffer)  # only whitespace so far: a JSON call may still come
            self._answer(pieces, self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep:]
            return False
        self._answer(pieces, self._buffer[:at])
        self._buffer, self._inside, self._end, self._searched = self._buffer[at:], True, None, len(opening)
        return True

    def _bare_start(self, final: bool) -> bool | None:
        """Whether the answer starts like a bare JSON call (None: too soon to tell)."""
        if not self.fmt.bare_json or self._started:
            return False
        head = self._buffer.lstrip()
        if not head:
            return False
        if head[0] in "{[" or head.startswith(FENCE):
            return True
        return None if not final and FENCE.startswith(head) else False

    def _close_bare(self, pieces: list[Piece], final: bool) -> bool:
        """Hand over a bare JSON answer once it is whole (a call, or text if it is none)."""
        text = self._buffer
        if not could_be_call(text):
            self._holding = False
            self._answer(pieces, text[:1])  # no call: the rest is read as ordinary text
            self._buffer = text[1:]
            return True
        if text.startswith(FENCE):
            close = text.find("```", len(FENCE))
            end = close + 3 if close >= 0 else None
        else:
            self._end = self._end or _JsonEnd(0)
            end = self._end.end(text)
        if end is None and not final:
            return False
        section, self._buffer, self._holding = text[:end], text[end:] if end else "", False
        if is_call(self.fmt, section) or (end is None and re.match(r'\W*\{\s*"(name|tool_name)"', section)):
            self._call(pieces, section.strip())
        else:
            self._answer(pieces, section)
        return True

    def _section_end(self, final: bool) -> int | None:
        """Where the section being read ends (-1: it proves to be no section), None while open."""
        text, fmt = self._buffer, self.fmt
        if fmt.fenced:
            rest = text[len(fmt.open):].lstrip()
            if not rest.startswith("```"):
                return None if not final and "```".startswith(rest[:3]) else -1
            fence = len(text) - len(rest) + 3
            close = text.find(fmt.close, max(fence, self._searched - len(fmt.close) + 1))
        elif fmt.close:
            close = text.find(fmt.close, max(len(fmt.open), self._searched - len(fmt.close) + 1))
        else:
            return self._json_section_end()
        self._searched = len(text)
        return close + len(fmt.close) if close >= 0 else None

    def _json_section_end(self) -> int | None:
        """For a marker with no closing one (Mistral, Granite, ``functools[``, ``<|python_tag|>``):
        the end of the JSON that follows it (after ``NAME[ARGS]`` for Mistral's newer calls)."""
        if self._end is None:
            text, after = self._buffer, len(self.fmt.open)
            args = text.find("[ARGS]", after) if self.fmt.kind == "mistral" else -1
            body = text[args + len("[ARGS]") if args >= 0 else after:].lstrip()
            if self.fmt.open.endswith("["):  # `` functools[``: the marker opens the list itself
                if not body or body[0] != "{":
                    return None if not body else -1  # ``functools[0]`` in a sentence: no call
                body = text[after - 1:]
            if not body or (self.fmt.kind == "mistral" and args < 0 and body[0] not in "[{"):
                return None  # the JSON has not begun yet (Mistral: the name before [ARGS])
            self._end = _JsonEnd(len(text) - len(body) if body[0] in "[{" else _NEVER)  # else: to the end
        return self._end.end(self._buffer)

    def _close_section(self, pieces: list[Piece], final: bool) -> bool:
        """Hand over the section being read when it is complete; False while it is not."""
        end = self._section_end(final)
        if end == -1:  # a marker that opens no call (Command R+'s word "Action:" in a sentence)
            self._inside = False
            self._answer(pieces, self._buffer[: len(self.fmt.open)])
            self._buffer = self._buffer[len(self.fmt.open):]
            return True
        if end is None:
            if not final:
                return False
            end = len(self._buffer)
        section, self._buffer, self._inside = self._buffer[:end], self._buffer[end:], False
        self._call(pieces, section)
        return True

    def _answer(self, pieces: list[Piece], text: str) -> None:
        if self._after_call or not self._started:
            text = text.lstrip()
        if text:
            self._after_call = False
            self._started = True
            pieces.append(Piece(ANSWER, text))

    def _call(self, pieces: list[Piece], section: str) -> None:
        self._after_call = True
        pieces.append(Piece(TOOL_CALL, section))
        for call in parse_calls(self.fmt, section):
            number = f"call_{len(self.calls) + 1}"
            self.calls.append(call if call.id else dataclasses.replace(call, id=number))
