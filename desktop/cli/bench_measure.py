"""Measurements behind ``cove bench``: speed runs, llama-bench, start-up, resident memory.

Kept apart from :mod:`desktop.cli.bench` (which decides what to run and prints the table). The raw
llama-cpp-python baseline uses the very ``llama_cpp`` module :mod:`desktop.core.engine.runtime` loaded
(``runtime.llama_cpp``), built through the same :func:`desktop.core.engine.llama_params.model_params`:
the same library, so the comparison is of Cove's code path only.

The engine is imported inside the functions that need it: ``llama_cpp`` takes long to load, and
every ``cove`` command imports this module (through :mod:`desktop.cli.bench`, for its parser).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.core.engine.output_parser import answer_text
from desktop.core.system.settings import GenerationSettings

MEMORY_MARK = "COVE_BENCH_MEMORY "
READY_LINE = "cove: window ready"
FILL_SENTENCE = "The quick brown fox jumps over the lazy dog near the old river bank. "


@dataclass
class Speed:
    """One streamed answer: llama.cpp's counters and the wall clock."""

    decode_tps: float          # llama.cpp counters: n_eval / t_eval
    prompt_tps: float          # n_p_eval / t_p_eval
    wall_tps: float            # (pieces - 1) / (last piece - first piece)
    prompt_tokens: int
    pieces: int
    ttft_s: float


def cove_speed(rt: Any, messages: list[dict[str, str]], settings: Any) -> Speed:
    """Stream one answer through Cove's ``Runtime.stream_chat`` from a cold KV cache."""
    rt._llm.reset()  # noqa: SLF001 - a cold prompt each time, as in the raw runs
    times: list[float] = []
    started = time.perf_counter()
    for _piece in rt.stream_chat(messages, settings):
        times.append(time.perf_counter())
    s = rt.last_stats
    return Speed(s.decode_tokens_per_s, s.prompt_tokens_per_s, _wall(times), s.prompt_eval_tokens, len(times),
                 (times[0] - started) if times else 0.0)


def raw_speed(llm: Any, tokens: list[int], max_tokens: int, sampling: dict[str, Any]) -> Speed:
    """The same prompt tokens through raw ``Llama.create_completion(stream=True)``."""
    from desktop.core.engine import runtime  # lazy: llama_cpp (see the module docstring)

    lib = runtime.llama_lib
    llm.reset()
    ctx = llm._ctx.ctx  # noqa: SLF001 - the perf counters need the raw context
    lib.llama_synchronize(ctx)
    lib.llama_perf_context_reset(ctx)
    times: list[float] = []
    started = time.perf_counter()
    for chunk in llm.create_completion(prompt=tokens, max_tokens=max_tokens, stream=True, **sampling):
        if chunk["choices"][0].get("text"):
            times.append(time.perf_counter())
    perf = lib.llama_perf_context(ctx)
    decode = perf.n_eval / (perf.t_eval_ms / 1000.0) if perf.t_eval_ms > 0 else 0.0
    prompt = perf.n_p_eval / (perf.t_p_eval_ms / 1000.0) if perf.t_p_eval_ms > 0 else 0.0
    return Speed(decode, prompt, _wall(times), int(perf.n_p_eval), len(times), (times[0] - started) if times else 0.0)


def raw_llama(path: Path, n_ctx: int, threads: int, repack: bool) -> Any:
    """llama-cpp-python's ``Llama`` with its defaults (n_batch 512, no flash attention), the same
    threads as Cove, and weight repacking as given (its default, on, crashes on AMX CPUs)."""
    from desktop.core.engine import llama_params, runtime  # lazy: llama_cpp (see the module docstring)

    with llama_params.model_params(use_extra_bufts=repack):
        return runtime.llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                                       n_threads_batch=threads, verbose=False)


def _wall(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


# -- llama.cpp's own llama-bench ---------------------------------------------------------------
def find_llama_bench() -> Path | None:
    """``$COVE_LLAMA_BENCH`` or ``llama-bench`` on PATH."""
    configured = os.environ.get("COVE_LLAMA_BENCH")
    if configured and Path(configured).is_file():
        return Path(configured)
    found = shutil.which("llama-bench")
    return Path(found) if found else None


def llama_bench(binary: Path, model: Path, threads: int, prompt: int, gen: int, reps: int,
                repack: bool) -> dict[str, float]:
    """Tokens/s from ``llama-bench -o json`` with Cove's settings (batch 512, weight repacking as the
    probe chose), flash attention off and on: ``prompt`` tokens from an empty cache (keys
    ``prompt_fa0``/``prompt_fa1``), and ``gen`` tokens decoded after a ``prompt``-token context, as in
    Cove's run (``decode_fa0``/``decode_fa1``). Empty on failure."""
    common = [str(binary), "-m", str(model), "-t", str(threads), "-r", str(reps), "-b", "512", "-ub", "512",
              "--repack", str(int(repack)), "-fa", "0,1", "-o", "json"]
    figures: dict[str, float] = {}
    for kind, args in (("prompt", ["-p", str(prompt), "-n", "0"]), ("decode", ["-p", "0", "-n", str(gen),
                                                                               "-d", str(prompt)])):
        try:
            out = subprocess.run(common + args, capture_output=True, text=True, timeout=600,
                                 stdin=subprocess.DEVNULL, env={**os.environ, "GGML_NO_BACKTRACE": "1"})
            results = json.loads(out.stdout) if out.returncode == 0 else []
        except (OSError, subprocess.SubprocessError, ValueError):
            continue
        for entry in results:
            flash = entry.get("flash_attn")
            figures[f"{kind}_fa{1 if flash in (True, 1, 'on', 'enabled') else 0}"] = float(entry.get("avg_ts", 0.0))
    return figures


# -- the app's start-up ------------------------------------------------------------------------
def app_command(*args: str) -> list[str]:
    """How to start Cove itself: the frozen app binary, or this Python with ``-m desktop``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "desktop", *args]


def rss_bytes(pid: int) -> int:
    """VmRSS of a process (Linux; 0 elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def startup(basedir: Path, timeout_s: float = 60.0) -> tuple[float, int]:
    """Seconds from spawn to 'cove: window ready' of ``cove --safe-mode`` offscreen, and its
    resident memory one second later (idle, no model)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "COVE_BASEDIR": str(basedir), "COVE_REPORT_READY": "1",
           "PYTHONUNBUFFERED": "1"}
    lines: queue.Queue[str | None] = queue.Queue()
    started = time.perf_counter()
    proc = subprocess.Popen(app_command("--safe-mode"), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="bench-startup", daemon=True).start()
    ready = 0.0
    try:
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if line is None:
                break
            if READY_LINE in line:
                ready = time.perf_counter() - started
                break
        if not ready:
            return 0.0, 0
        time.sleep(1.0)
        return ready, rss_bytes(proc.pid)
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen) -> None:
    """End a child the benchmark started (SIGTERM, then SIGKILL after 5 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- resident memory of a loaded model, in a child process ------------------------------------------
def memory_child_command(model: Path, n_ctx: int, repack: bool, threads: int, fill: bool,
                         flash: bool = False) -> list[str]:
    """The command line of :func:`memory_child` (``cove bench --memory-child`` in a frozen app)."""
    args = ["--memory-child", str(model), "--ctx", str(n_ctx), "--repack", str(int(repack)),
            "--threads", str(threads)] + (["--fill"] if fill else []) + (["--flash"] if flash else [])
    if getattr(sys, "frozen", False):
        return [sys.executable, "bench", *args]
    return [sys.executable, "-m", "desktop.cli.bench", *args]


def measure_memory(model: Path, n_ctx: int, repack: bool, threads: int, fill: bool = False,
                   timeout_s: float = 1800.0, flash: bool = False) -> dict[str, Any]:
    """Run :func:`memory_child` and return its report ({} when it failed or the OS has no /proc)."""
    try:
        proc = subprocess.run(memory_child_command(model, n_ctx, repack, threads, fill, flash), capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    for line in proc.stdout.splitlines():
        if line.startswith(MEMORY_MARK):
            return json.loads(line[len(MEMORY_MARK):])
    return {}


def _status() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def memory_child(model: str, n_ctx: int, repack: bool, threads: int, fill: bool, flash: bool = False) -> int:
    """Load ``model`` with Cove's Runtime, answer once (a prompt that fills the context when
    ``fill``), and print this process's memory before loading, after loading and after answering."""
    if not Path("/proc/self/status").is_file():
        return 2
    from desktop.core.engine.runtime import LoadConfig, Runtime  # lazy: llama_cpp (see the module docstring)

    base = _status()  # Python, Cove's core and the llama.cpp libraries, no model yet
    rt = Runtime(model, LoadConfig(n_ctx=n_ctx, n_threads=threads, use_extra_bufts=repack, flash_attn=flash))
    loaded = _status()
    message = "In one sentence: why is the sky blue?"
    if fill:
        per_token = rt.count_tokens(FILL_SENTENCE * 20) / 20
        message = FILL_SENTENCE * max(1, int((rt.n_ctx - 48) / per_token))
        while len(rt.render([{"role": "user", "content": message}])[1]) > rt.n_ctx - 24:
            message = message[: int(len(message) * 0.98)]
    settings = GenerationSettings(temperature=0.0, max_tokens=8, seed=1)
    started = time.perf_counter()
    answer_text(rt.stream_chat([{"role": "user", "content": message}], settings))
    seconds = time.perf_counter() - started
    after = _status()
    print(MEMORY_MARK + json.dumps({"base": base, "loaded": loaded, "after": after, "n_ctx": rt.n_ctx,
                                    "prompt_tokens": rt.last_stats.prompt_tokens, "cached": rt.cached_tokens,
                                    "seconds": seconds}), flush=True)
    rt.close()
    return 0


# -- the GUI stall, from the benchmark suite ----------------------------------------------------------
STALL_TEST = "tests/bench/test_bench_generation.py::test_event_loop_stalls_while_streaming_markdown"
STALL_LINE = re.compile(r"\[bench\] 3 GUI stall \| real: longest heartbeat gap while streaming: ([\d.]+ ms)")


def gui_stall(repo: Path, timeout_s: float = 300.0) -> tuple[str, str]:
    """Run tests/bench's stall benchmark (a real Markdown answer streaming into the offscreen window)
    and return its longest GUI event-loop gap; the suite's summary file is left as it was."""
    if not (repo / STALL_TEST.split("::")[0]).is_file():
        return "n/a", "not a source checkout: the GUI stall is measured by tests/bench"
    artifact = repo / "test-artifacts" / "bench.txt"
    before = artifact.read_bytes() if artifact.is_file() else None
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-m", "bench", "-p", "no:cacheprovider",
                               STALL_TEST], cwd=repo, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        found = STALL_LINE.search(done.stdout)
    except (OSError, subprocess.SubprocessError):
        found = None
    finally:
        if before is None:
            artifact.unlink(missing_ok=True)
        else:
            artifact.write_bytes(before)
    if found is None:
        return last_gui_stall(repo)
    return found.group(1), "measured now by tests/bench (real answer, offscreen window)"


def last_gui_stall(repo: Path) -> tuple[str, str]:
    """The longest GUI stall while streaming, from ``test-artifacts/bench.txt`` of the last
    ``pytest tests/bench -m bench`` run (only in a checkout with the tests)."""
    artifact = repo / "test-artifacts" / "bench.txt"
    if not (repo / "tests" / "bench").is_dir():
        return "n/a", "not a source checkout: the GUI stall is measured by tests/bench"
    if not artifact.is_file():
        return "n/a", "run `pytest tests/bench -s -m bench` to measure it"
    for line in artifact.read_text(errors="replace").splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 3 and "GUI stall" in cells[0] and cells[1] == "real: longest heartbeat gap while streaming":
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(artifact.stat().st_mtime))
            return cells[2], f"from tests/bench's last run ({when}), not measured now"
    return "n/a", "no GUI stall figure in test-artifacts/bench.txt"
