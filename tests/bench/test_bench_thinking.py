"""Thinking parsing costs nothing you can see: decode through Cove's runtime with a thinking format
(every piece through the output parser, markers held back, reasoning split off) against the same
with none, alternating in one run on SmolLM2 (target >= 0.98)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from benchlib import median, record, spread

from desktop.core.engine.runtime import LoadConfig, Runtime
from desktop.core.engine.thinking_format import TAGS, ThinkingFormat
from desktop.core.system.settings import GenerationSettings

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

ROUNDS = 9
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]


def wall_decode(runtime: Runtime, settings: GenerationSettings) -> float:
    """Pieces per second from the first piece to the last, as the caller receives them."""
    times = []
    for _piece in runtime.stream_chat(STORY, settings):
        times.append(time.perf_counter())
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else 0.0


def test_thinking_parser_overhead(starter_model: Path, probed_cache: Path) -> None:
    runtime = Runtime(starter_model, LoadConfig(n_ctx=2048, n_threads=2))
    try:
        settings = GenerationSettings(temperature=0.0, seed=1, max_tokens=200)
        plain = runtime.thinking
        # Parsing on: a <think> format whose block never opens, so every piece is scanned for the
        # marker and held back when it could start one, and the same text comes out.
        parsing = replace(ThinkingFormat(), kind=TAGS, open="<think>", close="</think>")
        on, off = [], []
        wall_decode(runtime, settings)  # warm-up
        for _ in range(ROUNDS):
            runtime.thinking = parsing
            on.append(wall_decode(runtime, settings))
            runtime.thinking = plain
            off.append(wall_decode(runtime, settings))
        ratio = median([a / b for a, b in zip(on, off)])
        record("thinking", "decode with thinking parsing on", median(on), "tok/s", note=spread(on))
        record("thinking", "decode with it off", median(off), "tok/s", note=spread(off))
        record("thinking", "parsing on / off (target >= 0.98)", ratio, "x", digits=3)
        assert all(v > 0 for v in on + off)
    finally:
        runtime.close()
