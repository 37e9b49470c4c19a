"""Shared helpers of the benchmark suite: the results table, timing probes, raw llama.cpp runs.

Imported as ``benchlib`` by ``tests/bench/conftest.py`` and the bench test files (pytest puts
``tests/bench`` on ``sys.path`` for them), so they all share one :data:`RESULTS` list.
"""

from __future__ import annotations

import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.cli.bench_measure import stop_process

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "test-artifacts" / "bench.txt"

SEED = 7
TEMPERATURE = 0.7


# -- results table ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the summary table."""

    section: str
    metric: str
    value: str
    target: str = ""
    verdict: str = ""
    note: str = ""


RESULTS: list[Row] = []
NOTES: list[str] = []


def record(section: str, metric: str, value: float | str, unit: str = "", *, digits: int = 1,
           target: str = "", ok: bool | None = None, note: str = "") -> None:
    """Add a figure to the summary table (and print it at once, visible with ``-s``)."""
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    if unit:
        text += f" {unit}"
    verdict = "" if ok is None else ("meets" if ok else "MISSES")
    RESULTS.append(Row(section, metric, text, target, verdict, note))
    print(f"[bench] {section} | {metric}: {text}" + (f"  (target {target}: {verdict})" if target else "")
          + (f"  [{note}]" if note else ""), flush=True)


def note(text: str) -> None:
    """A free-text remark printed under the table."""
    NOTES.append(text)
    print(f"[bench] note: {text}", flush=True)


def environment_lines() -> list[str]:
    """What the figures were measured on."""
    try:
        import llama_cpp

        llama = llama_cpp.__version__
    except Exception:  # noqa: BLE001 - informational only
        llama = "?"
    try:
        import PySide6

        pyside = PySide6.__version__
    except Exception:  # noqa: BLE001
        pyside = "?"
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"machine: {platform.machine()} {cpu}, {os.cpu_count()} logical CPUs, load average now {load}",
        f"python {platform.python_version()}, PySide6 {pyside}, llama-cpp-python {llama}, "
        f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', '')}",
    ]


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table of ``rows`` with the environment and notes."""
    headers = ("section", "metric", "value", "target", "verdict", "detail")
    cells = [(r.section, r.metric, r.value, r.target, r.verdict, r.note) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])  # the last column is not padded
    line = "  ".join("-" * w for w in widths)
    out = ["Cove benchmark summary", *environment_lines(), "",
           "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), line]
    last = None
    for c in cells:
        if last is not None and c[0] != last:
            out.append("")
        last = c[0]
        out.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
    if NOTES:
        out += ["", "notes:"] + [f"  - {n}" for n in NOTES]
    return "\n".join(out) + "\n"


# -- how busy the machine was ------------------------------------------------------------------------
def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def _machine_busy_s() -> float:
    """CPU seconds all CPUs spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _clock_ticks()


def _own_busy_s() -> float:
    """CPU seconds of this process and its reaped children."""
    parts = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in parts[11:15])
    return (utime + stime + cutime + cstime) / _clock_ticks()


class CpuWatch:
    """How much CPU other processes used while a benchmark ran (they make its figures noisy:
    llama.cpp's threads spin at barriers and slow down sharply when a core is taken)."""

    BUSY_CORES = 0.25

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._machine0 = _machine_busy_s()
        self._own0 = _own_busy_s()

    def foreign_cores(self) -> float:
        """Average number of cores kept busy by other processes since construction."""
        elapsed = time.perf_counter() - self._t0
        if elapsed <= 0:
            return 0.0
        foreign = (_machine_busy_s() - self._machine0) - (_own_busy_s() - self._own0)
        return max(0.0, foreign / elapsed)

    def record(self, section: str) -> float:
        """Add a row saying how busy the rest of the machine was; returns the figure."""
        cores = self.foreign_cores()
        quiet = cores < self.BUSY_CORES
        record(section, "CPU used by other processes meanwhile", cores, "cores", digits=2,
               target=f"< {self.BUSY_CORES} (quiet)", ok=quiet,
               note="" if quiet else "busy machine: speed figures of this section are unreliable")
        return cores


# -- statistics --------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(pct / 100.0 * len(ordered) + 0.4999))))
    return float(ordered[rank - 1])


def spread(values: Sequence[float], digits: int = 1) -> str:
    """'a / b / c' of the individual runs, for the notes."""
    return " / ".join(f"{v:.{digits}f}" for v in values)


# -- GUI-thread probes -----------------------------------------------------------------------------------
def _qt():
    from PySide6 import QtCore

    return QtCore


class TokenClock:
    """Records when each streamed ``piece`` of the generation service reaches the GUI thread."""

    def __init__(self, generation: Any) -> None:
        QtCore = _qt()

        class _Receiver(QtCore.QObject):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self.pieces: list[str] = []

            @QtCore.Slot(int, str, str)
            def on_piece(self, _request_id: int, _kind: str, piece: str) -> None:
                self.times.append(time.perf_counter())
                self.pieces.append(piece)

        self._generation = generation
        self._receiver = _Receiver()  # on the GUI thread, where the service re-emits the worker's pieces
        generation.piece.connect(self._receiver.on_piece)

    @property
    def times(self) -> list[float]:
        return self._receiver.times

    @property
    def text(self) -> str:
        return "".join(self._receiver.pieces)

    def close(self) -> None:
        self._generation.piece.disconnect(self._receiver.on_piece)

    def wall_tokens_per_s(self) -> float:
        """(pieces - 1) / (last - first), as seen by the GUI thread."""
        t = self.times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0


@dataclass
class SlowEvent:
    """One event whose delivery on the GUI thread took long (outermost ``notify`` call only)."""

    ms: float
    ended: float
    kind: str
    receiver: str


def _describe_receiver(receiver: Any) -> str:
    name = type(receiver).__name__
    try:
        if receiver.objectName():
            name += f"'{receiver.objectName()}'"
        parent = receiver.parent()
        if parent is not None and name in ("QTimer", "QWidgetWindow", "QWindow"):
            name += f"(of {type(parent).__name__})"
    except Exception:  # noqa: BLE001 - some receivers are not QObjects we can inspect
        pass
    return name


def timed_application_class() -> type:
    """A QApplication whose ``notify`` times each event delivered on the GUI thread while
    :attr:`recording` is set (the bench conftest makes pytest-qt create this class)."""
    from PySide6.QtWidgets import QApplication

    class TimedApplication(QApplication):
        recording = False
        threshold_ms = 1.0
        slow: list[SlowEvent] = []
        watched: dict[int, str] = {}  # id(receiver) -> label: every delivery to it is timed
        watched_ms: dict[str, list[tuple[float, str]]] = {}
        delivered = 0
        _depth = 0
        _gui_thread = threading.get_ident()

        def notify(self, receiver: Any, event: Any) -> bool:
            cls = TimedApplication
            if not cls.recording or threading.get_ident() != cls._gui_thread:
                return super().notify(receiver, event)
            kind = event.type()
            cls._depth += 1
            t0 = time.perf_counter()
            try:
                return super().notify(receiver, event)
            finally:
                cls._depth -= 1
                if cls._depth == 0:
                    now = time.perf_counter()
                    cls.delivered += 1
                    ms = (now - t0) * 1000.0
                    label = cls.watched.get(id(receiver))
                    if label is not None:
                        cls.watched_ms.setdefault(label, []).append((ms, getattr(kind, "name", str(kind))))
                    if ms >= cls.threshold_ms:
                        cls.slow.append(SlowEvent(ms, now, getattr(kind, "name", str(kind)),
                                                  _describe_receiver(receiver)))

    return TimedApplication


@dataclass
class LoopReport:
    """What :class:`LoopMonitor` saw."""

    heartbeat_gaps_ms: list[float] = field(default_factory=list)
    gap_ends: list[float] = field(default_factory=list)
    slow_events: list[SlowEvent] = field(default_factory=list)
    events_delivered: int = 0
    event_timing: bool = False
    watched_ms: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    duration_s: float = 0.0

    def gaps_after(self, t: float) -> list[float]:
        return [g for g, end in zip(self.heartbeat_gaps_ms, self.gap_ends) if end > t]

    def gaps_before(self, t: float) -> list[float]:
        return [g for g, end in zip(self.heartbeat_gaps_ms, self.gap_ends) if end <= t]

    def slow_after(self, t: float) -> list[SlowEvent]:
        return [e for e in self.slow_events if e.ended > t]

    def worst_events(self, t: float = 0.0, count: int = 3) -> str:
        """The longest event deliveries after ``t``, as text."""
        worst = sorted(self.slow_after(t), key=lambda e: e.ms, reverse=True)[:count]
        return "; ".join(f"{e.ms:.1f} ms {e.kind} -> {e.receiver}" for e in worst) or "none >= 1 ms"


class LoopMonitor:
    """Measures the GUI event loop's responsiveness on the GUI thread:

    * a heartbeat: a 1 ms ``Qt.PreciseTimer``; the gap between two timeouts is how long the loop
      could not run a timer (about 1 ms when idle, more when something blocked it);
    * when the application is the bench's TimedApplication: every event delivery that took
      1 ms or more, with its type and receiver (the stall's culprit).
    """

    def __init__(self, interval_ms: int = 1) -> None:
        QtCore = _qt()
        self._timer = QtCore.QTimer()
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)
        self._app_cls = type(QtCore.QCoreApplication.instance())
        self._timed = hasattr(self._app_cls, "recording") and hasattr(self._app_cls, "slow")
        self.report = LoopReport()
        self._last_beat = 0.0
        self._started = 0.0

    def _beat(self) -> None:
        now = time.perf_counter()
        if self._last_beat:
            self.report.heartbeat_gaps_ms.append((now - self._last_beat) * 1000.0)
            self.report.gap_ends.append(now)
        self._last_beat = now

    def start(self, watch: dict[str, Any] | None = None) -> None:
        """Start; ``watch`` maps a label to a QObject whose every event delivery is timed
        (e.g. the controller's paint timer: its timeout does one whole streaming repaint)."""
        self.report = LoopReport(event_timing=self._timed)
        self._last_beat = 0.0
        self._started = time.perf_counter()
        if self._timed:
            self._app_cls.watched = {id(obj): label for label, obj in (watch or {}).items()}
            self._app_cls.watched_ms = {}
            self._app_cls.slow = []
            self._app_cls.delivered = 0
            self._app_cls.recording = True
        self._timer.start()

    def stop(self) -> LoopReport:
        self._timer.stop()
        if self._timed:
            self._app_cls.recording = False
            self.report.slow_events = list(self._app_cls.slow)
            self.report.watched_ms = {k: list(v) for k, v in self._app_cls.watched_ms.items()}
            self._app_cls.watched = {}
            self.report.events_delivered = self._app_cls.delivered
        self.report.duration_s = time.perf_counter() - self._started
        return self.report


class CallTimer:
    """Wraps a method on a class to record how long each call takes (ms), restored by monkeypatch.

    Used on stable, plain-Python seams only (``MarkdownRenderer.render``); whole repaints are
    timed through the event loop instead (see :class:`LoopMonitor`), which does not depend on
    how the widgets split the work.
    """

    def __init__(self, monkeypatch: Any, owner: type, name: str,
                 accept: Callable[..., bool] | None = None) -> None:
        self.calls_ms: list[float] = []
        self.sizes: list[int] = []
        self.enabled = True
        original = getattr(owner, name)
        timer = self

        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if not timer.enabled or (accept is not None and not accept(obj, *args)):
                return original(obj, *args, **kwargs)
            t0 = time.perf_counter()
            try:
                return original(obj, *args, **kwargs)
            finally:
                timer.calls_ms.append((time.perf_counter() - t0) * 1000.0)
                timer.sizes.append(len(args[0]) if args and isinstance(args[0], str) else 0)

        monkeypatch.setattr(owner, name, wrapper)

    def reset(self) -> None:
        self.calls_ms.clear()
        self.sizes.clear()


# -- driving the window --------------------------------------------------------------------------------
def send_and_wait(qtbot: Any, app: Any, text: str, timeout_ms: int,
                  before_enter: Callable[[], None] | None = None) -> tuple[float, tuple[int, str, dict]]:
    """Type ``text`` into the composer and press Enter; wait for ``answer_finished``.

    Returns the perf_counter time of the key press and the signal's arguments.
    """
    from PySide6.QtCore import Qt

    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    if before_enter is not None:
        before_enter()
    with qtbot.waitSignal(app.controller.answer_finished, timeout=timeout_ms) as blocker:
        pressed = time.perf_counter()
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    return pressed, tuple(blocker.args)  # type: ignore[return-value]


# -- raw llama-cpp-python ---------------------------------------------------------------------------------
@dataclass
class RawRun:
    """One streamed chat completion straight through llama-cpp-python."""

    chunks: int
    wall_tokens_per_s: float
    counter_tokens_per_s: float
    n_eval: int
    n_p_eval: int
    ttft_s: float
    total_s: float
    text: str
    finish_reason: str


def raw_chat(llm: Any, messages: list[dict[str, str]], *, max_tokens: int, seed: int, temperature: float,
             top_p: float, top_k: int, min_p: float, repeat_penalty: float) -> RawRun:
    """Stream one chat completion with ``Llama.create_chat_completion(stream=True)``."""
    import llama_cpp.llama_cpp as lib

    ctx = llm._ctx.ctx
    lib.llama_perf_context_reset(ctx)
    times: list[float] = []
    parts: list[str] = []
    finish = ""
    started = time.perf_counter()
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, seed=seed,
                                            temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                                            repeat_penalty=repeat_penalty, stream=True):
        choice = chunk["choices"][0]
        content = choice.get("delta", {}).get("content")
        if content:
            times.append(time.perf_counter())
            parts.append(content)
        finish = choice.get("finish_reason") or finish
    ended = time.perf_counter()
    perf = lib.llama_perf_context(ctx)
    wall = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    counter = perf.n_eval / (perf.t_eval_ms / 1000.0) if perf.t_eval_ms > 0 else 0.0
    return RawRun(len(times), wall, counter, int(perf.n_eval), int(perf.n_p_eval),
                  (times[0] - started) if times else 0.0, ended - started, "".join(parts), finish)


def runtime_chat(runtime: Any, messages: list[dict[str, str]], settings: Any) -> RawRun:
    """Stream one answer through Cove's own ``Runtime.stream_chat`` on this thread, without the
    GUI (cold KV cache, like :func:`raw_chat` after ``reset()``)."""
    runtime._llm.reset()
    times: list[float] = []
    parts: list[str] = []
    started = time.perf_counter()
    for piece in runtime.stream_chat(messages, settings):
        times.append(time.perf_counter())
        parts.append(piece.text)
    ended = time.perf_counter()
    stats = runtime.last_stats
    wall = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return RawRun(len(times), wall, float(stats.decode_tokens_per_s), int(stats.completion_tokens),
                  int(stats.prompt_eval_tokens), (times[0] - started) if times else 0.0, ended - started,
                  "".join(parts), stats.stop_reason)


# -- a realistic Markdown answer for the synthetic replay ------------------------------------------------
MARKDOWN_DOC = '''# Keeping a Local Model Fast

Running a language model on your own computer is mostly a question of **memory bandwidth** and a
little care with *threads*. This short guide collects what matters.

## What to check first

- The model file fits in RAM with room to spare (at least 2 GB free).
- The number of threads matches the physical cores, not the logical ones.
- Quantized weights (`Q4_K_M`, `Q5_K_M`) are usually the best trade-off.
- Long contexts cost memory: 4096 tokens is a good default.

## Typical speeds

| Model size | Quantization | Tokens per second | Memory |
|------------|--------------|------------------:|-------:|
| 135M       | Q4_1         | 120               | 0.2 GB |
| 1.5B       | Q4_K_M       | 35                | 1.1 GB |
| 7B         | Q4_K_M       | 9                 | 4.4 GB |
| 13B        | Q5_K_M       | 4                 | 9.2 GB |

## Measuring it yourself

The snippet below streams an answer and prints the decoding speed:

```python
import time
from llama_cpp import Llama

llm = Llama(model_path="model.gguf", n_ctx=4096, n_threads=4, verbose=False)
start = time.perf_counter()
count = 0
for chunk in llm.create_completion("Tell me about the sea.", max_tokens=128, stream=True):
    count += 1
    print(chunk["choices"][0]["text"], end="", flush=True)
elapsed = time.perf_counter() - start
print(f"\\n{count / elapsed:.1f} tokens/s")
```

## Summary

1. Pick a quantized model that fits comfortably.
2. Use as many threads as physical cores.
3. Keep the context as short as the task allows.

> Tip: close other heavy programs while generating; they compete for the same memory bus.
'''


def markdown_pieces(model_path: Path, count: int = 500) -> list[str]:
    """``count`` token pieces of :data:`MARKDOWN_DOC` (repeated as needed) cut by the model's tokenizer."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    try:
        pieces: list[str] = []
        part = 1
        while len(pieces) < count:
            text = MARKDOWN_DOC if part == 1 else MARKDOWN_DOC.replace("# Keeping", f"# Part {part}: Keeping", 1)
            tokens = vocab.tokenize(("\n" if part > 1 else "").encode() + text.encode(), add_bos=False, special=False)
            pieces += [vocab.detokenize([t]).decode("utf-8", "replace") for t in tokens]
            part += 1
        return pieces[:count]
    finally:
        vocab.close()


class TokenReplayer:
    """Stands in for ``GenerationService.generate``: a Python thread emits the service's ``piece``
    signals at a fixed rate, then ``finished``, so only the GUI side does work."""

    def __init__(self, generation: Any, pieces: list[str], rate_per_s: float) -> None:
        self._generation = generation
        self._pieces = pieces
        self._interval = 1.0 / rate_per_s
        self._next_id = 1_000_000
        self.thread: threading.Thread | None = None
        self.emitted_at: list[float] = []

    def generate(self, _messages: list, _settings: dict, _message_id: int, _conversation_id: int = 0) -> int:
        self._next_id += 1
        request_id = self._next_id
        self.thread = threading.Thread(target=self._run, args=(request_id,), name="bench-replay", daemon=True)
        self.thread.start()
        return request_id

    def _run(self, request_id: int) -> None:
        time.sleep(0.05)  # let the GUI thread record the request id first
        start = time.perf_counter()
        for i, piece in enumerate(self._pieces):
            delay = start + i * self._interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.emitted_at.append(time.perf_counter())
            self._generation.piece.emit(request_id, "answer", piece)
        elapsed = time.perf_counter() - start
        stats = {"completion_tokens": len(self._pieces), "decode_tokens_per_s": len(self._pieces) / elapsed,
                 "time_to_first_token_s": 0.0, "context_used": 0, "context_size": 0, "stop_reason": "length"}
        self._generation.finished.emit(request_id, "complete", stats)


# -- subprocesses -------------------------------------------------------------------------------------
READY_LINE = "cove: window ready"


def proc_status(pid: int) -> dict[str, int]:
    """Memory fields of /proc/PID/status in kB (VmRSS, RssAnon, RssFile, RssShmem, VmHWM)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM", "Threads"):
            out[key] = int(rest.split()[0])
    return out


def maps_mention(pid: int, needle: str) -> bool:
    """True when /proc/PID/maps maps a file whose path contains ``needle``."""
    try:
        return needle in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@dataclass
class Spawned:
    """A ``python -m desktop`` child, the time its ready line arrived, and its stderr."""

    proc: subprocess.Popen
    spawned_at: float
    ready_s: float
    stderr_lines: list[str]
    lines: queue.Queue

    def wait_line(self, needle: str, timeout_s: float) -> float | None:
        """Seconds from spawn to the first later stderr line containing ``needle`` (None: not seen)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            try:
                at, line = self.lines.get(timeout=max(0.01, deadline - time.perf_counter()))
            except queue.Empty:
                return None
            if line is None:
                return None
            self.stderr_lines.append(line)
            if needle in line:
                return at - self.spawned_at


def spawn_cove(basedir: Path, *, safe_mode: bool, timeout_s: float = 60.0) -> Spawned:
    """Start Cove offscreen on ``basedir`` and wait for 'cove: window ready' on stderr."""
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", COVE_BASEDIR=str(basedir), COVE_REPORT_READY="1",
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "desktop"] + (["--safe-mode"] if safe_mode else [])
    lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1)

    def pump() -> None:
        assert proc.stderr is not None
        with proc.stderr:  # the pump owns the pipe: closed once the child has gone
            for line in proc.stderr:
                lines.put((time.perf_counter(), line.rstrip("\n")))
        lines.put((time.perf_counter(), None))

    threading.Thread(target=pump, name="bench-stderr", daemon=True).start()
    child = Spawned(proc, started, 0.0, [], lines)
    ready = child.wait_line(READY_LINE, timeout_s)
    if ready is None:
        stop_process(proc)
        raise AssertionError(f"no '{READY_LINE}' within {timeout_s:.0f} s (exit {proc.poll()}); "
                             f"stderr: {child.stderr_lines[-10:]}")
    child.ready_s = ready
    return child


