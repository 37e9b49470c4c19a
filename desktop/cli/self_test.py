"""``cove --self-test``: proves an installed Cove can chat offline, without a window.

It loads the starter model (in a bundle: the copy shipped inside it) the way the app does, through
:mod:`desktop.core.engine.loader` (file check, quarantine probe in a child process, in-process
load), generates a short answer and prints one line::

    cove self-test ok: SmolLM2-135M-Instruct.Q4_1, 12 tokens in 0.4 s (30 tok/s), answer: "..."

Everything it writes (the probe verdict, the crash marker) goes to a temporary folder that is
removed afterwards: the user's data and settings are never touched. It does not import Qt, and
refuses any network connection. Exit status 0 on success; otherwise 1 and one line that says why.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from desktop.core.engine.loader import ModelFileError, load_runtime
from desktop.core.engine.output_parser import answer_text
from desktop.core.library.model_library import display_name, starter_model_path
from desktop.core.system import network_guard
from desktop.core.system.paths import app_paths
from desktop.core.system.settings import GenerationSettings

PROMPT = "What is the capital of France? Answer in one short sentence."
MAX_TOKENS = 24
ANSWER_CHARS = 120


class SelfTestError(RuntimeError):
    """The self-test failed; the message is one line for a person."""


def _one_line(text: str, limit: int = ANSWER_CHARS) -> str:
    flat = " ".join(text.split()).replace('"', "'")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def self_test(model: Path | None = None) -> str:
    """Run the self-test and return the report line; raises :class:`SelfTestError`."""
    network = network_guard.install(network_guard.NetworkLog())
    try:
        model = model or starter_model_path()
        if model is None:
            raise SelfTestError("the starter model is not in this build (SmolLM2-135M-Instruct.Q4_1.gguf)")
        with tempfile.TemporaryDirectory(prefix="cove-self-test-") as scratch:
            paths = app_paths(scratch).ensure()
            try:
                runtime = load_runtime(model, paths, n_ctx=512, probe_timeout=120.0)
            except ModelFileError as exc:
                raise SelfTestError(f"the model did not load: {exc}") from exc
            try:
                # lazy: a broken llama.cpp install must fail the self-test with its one line, not at import
                from desktop.core.engine.runtime import GenerationError

                settings = GenerationSettings(temperature=0.0, max_tokens=MAX_TOKENS, seed=1)
                started = time.perf_counter()
                try:
                    answer = answer_text(runtime.stream_chat([{"role": "user", "content": PROMPT}], settings))
                except GenerationError as exc:
                    raise SelfTestError(str(exc)) from exc
                seconds = time.perf_counter() - started
                stats = runtime.last_stats
            finally:
                runtime.close()
        if network.events():
            event = network.events()[0]
            raise SelfTestError(f"a network connection was attempted ({event.kind} {event.host}:{event.port})")
    finally:
        network_guard.uninstall(network)
    if not answer.strip():
        raise SelfTestError(f"{display_name(model)} loaded but generated no text")
    tokens = stats.completion_tokens
    rate = tokens / seconds if seconds > 0 else 0.0
    speed = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"
    return (f"cove self-test ok: {display_name(model)}, {tokens} tokens in {seconds:.1f} s ({speed} tok/s), "
            f'answer: "{_one_line(answer)}"')


def run_self_test(out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``cove --self-test``: print the report line; 0 when it worked, 1 with the reason when not."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        line = self_test()
    except SelfTestError as exc:
        print(f"cove self-test failed: {exc}", file=err, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - a self-test reports every failure as one line
        print(f"cove self-test failed: {type(exc).__name__}: {_one_line(str(exc), 300)}", file=err, flush=True)
        return 1
    print(line, file=out, flush=True)
    return 0
