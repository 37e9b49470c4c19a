"""Quarantine probe: load and test-run a model in a child process before Cove loads it.

``python -m desktop.core.engine.probe FILE --extra-bufts 1 --threads 2`` (in a frozen bundle, where
``sys.executable`` is the app itself: ``cove --probe-child FILE ...``) validates the file, loads it,
renders its chat template, evaluates a multi-token prompt and generates a few tokens, then prints
one ``COVE_PROBE {json}`` line. A native crash, an abort or a hang ends only the child.

:func:`probe_model` runs the child with each candidate configuration, fastest first (llama.cpp's
weight repacking on, then off, since repacking segfaults on some CPUs), and records the first one
that works for this file on this machine, so the in-process runtime never tries a configuration
that crashed here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.models.gguf import GGUFError, read_gguf
from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.network_guard import NetworkLog, install
from desktop.core.system.settings import GenerationSettings

logger = logging.getLogger(__name__)
MARK = "COVE_PROBE "
PROBE_PROMPT = "In one short sentence, what colour is the sky on a clear day?"
PROBE_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": PROBE_PROMPT},
]
TEMPLATE_SECONDS = 5.0
# In a frozen bundle (PyInstaller) there is no Python to run ``-m`` with: the app binary runs the
# child when its first argument is this flag (desktop/__main__.py checks it before anything else).
FROZEN_CHILD_FLAG = "--probe-child"


# The Windows bundle's console twin of the windowed cove.exe (build.spec): a windowed program's
# child would have no standard output to report on.
WINDOWS_CONSOLE_EXE = "cove-cli.exe"


def child_command() -> list[str]:
    """The command line that starts a probe child, without its arguments."""
    if getattr(sys, "frozen", False):
        console = Path(sys.executable).with_name(WINDOWS_CONSOLE_EXE)
        if os.name == "nt" and console.is_file():
            return [str(console), FROZEN_CHILD_FLAG]
        return [sys.executable, FROZEN_CHILD_FLAG]
    return [sys.executable, "-m", "desktop.core.engine.probe"]


@dataclass
class ProbeResult:
    """The probe's verdict. ``config`` is the load configuration that worked (a dict)."""

    ok: bool
    message: str
    config: dict[str, Any] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    seconds: float = 0.0


def machine_fingerprint() -> str:
    """Identifies the CPU and Python build: probe verdicts are only valid on the same one."""
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("model name", "flags")):
                flags += line
            if line.startswith("flags"):
                break
    except OSError:
        pass
    return hashlib.sha256(f"{cpu}|{flags}|{sys.version}".encode()).hexdigest()[:16]


def _runtime_version() -> str:
    # lazy: importlib.metadata costs about 10 ms, and every `cove` start imports this module
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return "unknown"


def file_identity(path: Path) -> str:
    """Size, modification time and path: changes when the file does."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def file_sha256(path: Path) -> str:
    """The file's SHA-256, recorded with the verdict so a verdict can be traced to exact bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(path: Path) -> str:
    """Key of a probe verdict: the file, the llama.cpp build and the machine."""
    return f"{file_identity(path)}|{_runtime_version()}|{machine_fingerprint()}"


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"crashed ({name})"
    return f"exited with status {code}"


def _run_child(path: Path, extra_bufts: bool, threads: int, timeout: float) -> tuple[bool, str, dict[str, Any]]:
    cmd = [*child_command(), str(path), "--extra-bufts", str(int(extra_bufts)), "--threads", str(threads)]
    try:
        # GGML_NO_BACKTRACE: on an abort, ggml otherwise attaches gdb (when installed) to print a
        # backtrace, which costs seconds and buries the assertion under gdb's output lines.
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GGML_NO_BACKTRACE": "1"},
                              creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console flash on Windows
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {timeout:.0f} s", {}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            report = json.loads(line[len(MARK):])
            return bool(report.get("ok")), str(report.get("message", "")), report
    tail = " ".join((proc.stderr.strip().splitlines() or [""])[-1].split())  # one line, no tabs
    tail = re.sub(r"^\S*/(?=[^/\s]+:\d+: )", "", tail)[:200]  # ".../ggml/src/x.cpp:135: msg" -> "x.cpp:135: msg"
    return False, _describe_exit(proc.returncode) + (f": {tail}" if tail else ""), {}


def probe_model(path: str | Path, *, threads: int = 2, timeout: float = 180.0,
                cache_file: Path | None = None, use_cache: bool = True) -> ProbeResult:
    """Find a configuration that loads and runs ``path`` on this machine, in child processes."""
    path = Path(path)
    key = cache_key(path) if path.is_file() else ""
    cache = read_json(cache_file, {}) if cache_file else {}
    if use_cache and key and key in cache:
        stored = cache[key]
        return ProbeResult(bool(stored["ok"]), stored["message"], stored.get("config", {}), ["cached"])
    started = time.monotonic()
    attempts: list[str] = []
    result = ProbeResult(False, "")
    for extra_bufts in (True, False):
        ok, message, report = _run_child(path, extra_bufts, threads, timeout)
        label = "weight repacking on" if extra_bufts else "weight repacking off"
        attempts.append(f"{label}: {'ok' if ok else message}")
        if ok:
            config: dict[str, Any] = {"use_extra_bufts": extra_bufts}
            if report.get("template_problem"):
                config["builtin_template"] = True
                config["template_problem"] = report["template_problem"]
            result = ProbeResult(True, "works", config, attempts)
            break
        if report.get("stage") == "validate":  # the file itself is bad: no config will help
            result = ProbeResult(False, message, {}, attempts)
            break
        result = ProbeResult(False, f"{path.name} could not be run by llama.cpp on this machine ({message})",
                             {}, attempts)
    result.seconds = time.monotonic() - started
    log = logger.info if result.ok else logger.warning
    log("probe of %s: %s in %.1f s (%s)", path.name, result.message, result.seconds, "; ".join(attempts))
    if cache_file and key:
        cache[key] = {"ok": result.ok, "message": result.message, "config": result.config,
                      "size": path.stat().st_size, "sha256": file_sha256(path),
                      "attempts": result.attempts, "at": time.time()}
        write_json_atomic(cache_file, cache)
    return result


def _report(stage: str, ok: bool, message: str, **extra: Any) -> int:
    """Print the child's one ``COVE_PROBE {json}`` line; returns its exit status."""
    print(MARK + json.dumps({"ok": ok, "message": message, "stage": stage, **extra}), flush=True)
    return 0 if ok else 1


def _check_template(runtime: Any) -> str:
    """Render the model's own chat template (when it has one) the way Cove will; returns the problem
    found ("" for none), the runtime switched to the built-in template when there is one."""
    # lazy: jinja2 takes about 35 ms to load, and every `cove` start imports this module
    from desktop.core.engine.chat_template import RENDER_SECONDS, TemplateError, TemplateRefusal

    template_problem: str = runtime.template_problem
    if not runtime.has_own_template:
        return template_problem
    try:
        started = time.monotonic()
        rendered = runtime._template.render(PROBE_CONVERSATION, seconds=TEMPLATE_SECONDS)  # noqa: SLF001
        took = time.monotonic() - started
        # Cove renders with RENDER_SECONDS: a template that needs more fails every answer.
        if took > RENDER_SECONDS:
            raise TemplateError(f"the chat template took {took:.1f} s for a four-message conversation "
                                f"(Cove allows {RENDER_SECONDS:g} s)")
        if not rendered.prompt.strip():
            raise TemplateError("the chat template produced an empty prompt")
    except TemplateRefusal:
        pass  # refusing e.g. a system role is the template's right, not a defect
    except TemplateError as exc:
        template_problem = str(exc)
        runtime.use_builtin_template(template_problem)
    return template_problem


def _generate(runtime: Any, template_problem: str) -> tuple[str, str]:
    """Answer the probe question; returns the text and the template problem (one more when the
    model's template failed on the question and the runtime fell back to the built-in one)."""
    # lazy: llama_cpp loads slowly, and every `cove` start imports this module
    from desktop.core.engine.runtime import GenerationError

    settings = GenerationSettings(temperature=0.0, max_tokens=4, seed=1)
    question = [{"role": "user", "content": PROBE_PROMPT}]
    try:
        return "".join(p.text for p in runtime.stream_chat(question, settings)), template_problem
    except GenerationError:
        if template_problem or not runtime.template_problem:
            raise
        # The model's template failed on the probe question (the runtime switched to the
        # built-in one): that is a template problem, not a reason to refuse the model.
        return "".join(p.text for p in runtime.stream_chat(question, settings)), runtime.template_problem


def child_main(argv: list[str] | None = None) -> int:
    """The probe child: test-run one model and print one ``COVE_PROBE {json}`` line."""
    parser = argparse.ArgumentParser(prog="python -m desktop.core.engine.probe")
    parser.add_argument("model")
    parser.add_argument("--extra-bufts", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    network = install(NetworkLog())  # the probe has no business on the network either
    try:
        info = read_gguf(args.model)
    except GGUFError as exc:
        return _report("validate", False, str(exc))
    stage = "load"
    # lazy: llama_cpp loads slowly, and every `cove` start imports this module
    from desktop.core.engine.runtime import GenerationError, LoadConfig, ModelLoadError, Runtime

    try:
        runtime = Runtime(args.model, LoadConfig(n_ctx=512, n_threads=args.threads,
                                                 use_extra_bufts=bool(args.extra_bufts)), info=info)
        stage = "template"
        template_problem = _check_template(runtime)
        stage = "generate"
        text, template_problem = _generate(runtime, template_problem)
        stats = runtime.last_stats
        runtime.close()
    except (ModelLoadError, GenerationError) as exc:
        return _report(stage, False, str(exc))
    if stats.prompt_tokens < 2:
        return _report(stage, False, "the chat template produced an empty prompt")
    return _report(stage, True, "works", text=text, prompt_tokens=stats.prompt_tokens,
                   template_problem=template_problem, network_attempts=len(network.events()))


if __name__ == "__main__":
    sys.exit(child_main())
