"""The token loop: sample from a prompt, decode each new token's text, stop on the model's terms.

Built on llama-cpp-python's ``Llama.generate`` (its sampler chain in C, the KV cache's longest-prefix
reuse, token-by-token evaluation) rather than ``create_completion``, so that the caller sees
token ids (a thinking budget continues from them exactly), special tokens can be decoded as text
(gpt-oss's harmony channels are special tokens), and no per-token work is done that the answer
does not need: the new token's bytes only, and stop strings checked on the tail.
"""

from __future__ import annotations

import codecs
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from desktop.core.system.settings import GenerationSettings


@dataclass
class Token:
    """One generated token and the text it completes (empty while a UTF-8 sequence is split)."""

    id: int
    text: str


class StopText:
    """Holds back text that may be the start of a stop string; says when one is complete."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of ``text`` that is surely answer; sets ``stopped`` at a stop string."""
        if not self._stops:
            return text
        held = self._held + text
        cut = min((held.find(s) for s in self._stops if s in held), default=-1)
        if cut >= 0:
            self._held, self.stopped = "", True
            return held[:cut]
        keep = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(held)), keep, -1):
                if stop.startswith(held[-n:]):
                    keep = n
                    break
        self._held = held[len(held) - keep:] if keep else ""
        return held[:len(held) - keep] if keep else held

    def flush(self) -> str:
        """Text held back when the answer ends without a stop string."""
        held, self._held = self._held, ""
        return held


def sampling(settings: GenerationSettings) -> dict[str, Any]:
    """``Llama.generate``'s sampling arguments for ``settings``."""
    return {"top_k": settings.top_k, "top_p": settings.top_p, "min_p": settings.min_p,
            "temp": settings.temperature, "repeat_penalty": settings.repeat_penalty}


def seed_sampler(llm: Any, seed: int) -> None:
    """A fixed seed repeats an answer; otherwise each answer draws a new one, as llama-cpp-python does."""
    llm.set_seed(seed if seed >= 0 else random.Random(llm._seed).randint(0, 2**32))  # noqa: SLF001


def generate_tokens(llm: Any, prompt: Sequence[int], settings: GenerationSettings, *, max_tokens: int,
                    stop_ids: set[int], cancel: threading.Event, special: bool,
                    grammar: Any = None) -> Iterator[Token]:
    """Tokens of the answer to ``prompt`` until one of ``stop_ids``, ``max_tokens``, or ``cancel``;
    each with its text (special tokens as text when ``special``); ``grammar`` (a ``LlamaGrammar``)
    constrains what may be sampled."""
    model = llm._model  # noqa: SLF001 - a single token's text is only exposed there
    utf8 = codecs.getincrementaldecoder("utf-8")("replace")
    options = {"grammar": grammar} if grammar is not None else {}
    for produced, token in enumerate(llm.generate(prompt, reset=True, **sampling(settings), **options), start=1):
        if token in stop_ids:
            return
        yield Token(token, utf8.decode(model.detokenize([token], special)))
        if produced >= max_tokens or cancel.is_set():
            return
