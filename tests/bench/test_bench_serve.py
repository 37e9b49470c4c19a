"""What serving over the OpenAI API costs: the same SmolLM2 answer, in one run, from

* Cove in-process (``load_runtime(...)`` then ``Runtime.stream_chat``, on this thread);
* ``cove serve`` in a child process, streamed by the official ``openai`` client;
* llama-cpp-python's own server (its ``llama_cpp.server`` app under uvicorn, as
  ``python -m llama_cpp.server`` runs it) in a child process, the same client: the third-party
  engine a team would add as a remote engine.

The same file, threads, n_ctx, max_tokens, greedy sampling and seed everywhere. Each figure is
taken where the person sees it: decode speed is (content pieces - 1) / (last - first), counted on
the pieces ``stream_chat`` yields and on the content chunks the client receives; time to first token
runs from the call (``stream_chat``, or the client's ``create``) to the first content piece.
Alternating rounds, medians; each round has its own system message, so every engine evaluates
the prompt afresh (none can answer from the previous round's KV cache). Nothing here fails on speed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from benchlib import SEED, CpuWatch, median, note, record, spread

from desktop.core.engine.loader import load_runtime
from desktop.core.server.model_ids import served_id
from desktop.core.system.paths import app_paths
from desktop.core.system.settings import GenerationSettings
from desktop.core.text.pieces import ANSWER
from tests.helpers.cove_server import cove_serve

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

RUNS = max(1, int(os.environ.get("COVE_BENCH_RUNS", "3")))
THREADS = 2
N_CTX = 2048
MAX_TOKENS = 256
TEMPERATURE = 0.0  # greedy: SmolLM2 lists animals up to max_tokens, and all three answers can match
PROMPT = "List 100 animals, one per line, numbered."
PAUSE_S = 0.5  # llama.cpp's threads of the engine that ran last spin a while before they sleep
SAMPLING = {"top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}  # Cove's defaults, sent to all
ENGINES = ("in-process", "cove serve", "llama_cpp.server")


# llama-cpp-python's server app with the probe's repacking verdict (its default, repacking on, crashes
# llama.cpp on CPUs with AMX; the server has no option for it, so the default params are wrapped as
# Cove's own Runtime does), otherwise exactly `python -m llama_cpp.server --model M --n_threads T ...`.
LLAMA_SERVER = r"""
import sys
import uvicorn
from desktop.core.engine.llama_params import model_params
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings
model, port, threads, n_ctx, repack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with model_params(use_extra_bufts=repack == "1", chat_formatter=True):
    app = create_app(server_settings=ServerSettings(host="127.0.0.1", port=port),
                     model_settings=[ModelSettings(model=model, n_threads=threads, n_threads_batch=threads,
                                                   n_ctx=n_ctx, verbose=False)])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


@dataclass
class Engine:
    """A running llama_cpp.server: its base URL (``.../v1``) and process."""

    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def llama_cpp_server(model_path: Path, log: Path, threads: int = 2, n_ctx: int = 2048, repack: bool = False,
                     timeout: float = 120.0) -> Iterator[Engine]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 in a child process, ready when it
    answers GET /v1/models; stopped (SIGTERM, then kill) at the end. Its stderr goes to ``log``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with log.open("w") as errors:
        process = subprocess.Popen([sys.executable, "-c", LLAMA_SERVER, str(model_path), str(port), str(threads),
                                    str(n_ctx), "1" if repack else "0"], stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    response.read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"llama_cpp.server did not start (exit {process.poll()}): "
                                         f"{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield Engine(url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Answer:
    """One streamed answer as its receiver saw it."""

    pieces: int
    tokens_per_s: float
    ttft_s: float
    text: str
    tokens: int  # completion tokens as the engine counts them (0: it did not say)
    engine_tps: float  # the engine's own decode figure (Cove's stats; 0: the engine did not say)
    cpu_s: float = 0.0  # CPU time this process spent on it (over the API: the client's share alone)
    wall_s: float = 0.0


def _answer(started: float, times: list[float], parts: list[str], tokens: int, engine_tps: float) -> Answer:
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return Answer(len(times), (len(times) - 1) / span if span > 0 else 0.0,
                  times[0] - started if times else 0.0, "".join(parts), tokens, engine_tps)


def messages(label: str) -> list[dict[str, str]]:
    """The question, after a system message of its own (its first tokens differ from the last one's)."""
    return [{"role": "system", "content": f"{label}."}, {"role": "user", "content": PROMPT}]


def in_process(runtime, label: str, max_tokens: int = MAX_TOKENS) -> Answer:
    settings = GenerationSettings(temperature=TEMPERATURE, seed=SEED, max_tokens=max_tokens, n_ctx=N_CTX,
                                  n_threads=THREADS, **SAMPLING)
    times: list[float] = []
    parts: list[str] = []
    started = time.perf_counter()
    for piece in runtime.stream_chat(messages(label), settings):
        if piece.kind == ANSWER and piece.text:
            times.append(time.perf_counter())
            parts.append(piece.text)
    stats = runtime.last_stats
    return _answer(started, times, parts, int(stats.completion_tokens), float(stats.decode_tokens_per_s))


def over_api(client: openai.OpenAI, model: str, label: str, max_tokens: int = MAX_TOKENS) -> Answer:
    times: list[float] = []
    parts: list[str] = []
    tokens, engine_tps = 0, 0.0
    cpu = time.process_time()
    started = time.perf_counter()
    stream = client.chat.completions.create(model=model, messages=messages(label), max_tokens=max_tokens,
                                            temperature=TEMPERATURE, top_p=SAMPLING["top_p"], seed=SEED,
                                            stream=True, stream_options={"include_usage": True},
                                            extra_body={k: SAMPLING[k] for k in ("top_k", "min_p", "repeat_penalty")})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.perf_counter())
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
            timings = (chunk.model_extra or {}).get("timings") or {}  # cove serve's, as llama-server's
            engine_tps = float(timings.get("predicted_per_second") or 0.0)
    answer = _answer(started, times, parts, tokens, engine_tps)
    answer.wall_s, answer.cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return answer


def test_decode_and_first_token_over_the_api_vs_in_process(starter_model: Path, probed_cache: Path,
                                                            tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("bench-serve")
    home = app_paths(workdir / "cove").ensure()
    shutil.copy(probed_cache, home.probe_file)
    smol = served_id(starter_model)
    load_before = os.getloadavg()[0]
    watch = CpuWatch()
    runtime = load_runtime(starter_model, home, n_ctx=N_CTX, n_threads=THREADS)
    try:
        with cove_serve(home, "--model", smol, "--ctx", str(N_CTX), "--threads", str(THREADS)) as served, \
                llama_cpp_server(starter_model, workdir / "llama-server.log", threads=THREADS, n_ctx=N_CTX,
                                 repack=runtime.config.use_extra_bufts) as engine, \
                openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=120) as cove_api, \
                openai.OpenAI(base_url=engine.url, api_key="unused", max_retries=0, timeout=120) as llama_api:
            llama_model = llama_api.models.list().data[0].id
            ask = {"in-process": lambda label, n=MAX_TOKENS: in_process(runtime, label, n),
                   "cove serve": lambda label, n=MAX_TOKENS: over_api(cove_api, smol, label, n),
                   "llama_cpp.server": lambda label, n=MAX_TOKENS: over_api(llama_api, llama_model, label, n)}
            for name in ENGINES:  # a whole answer to warm up, not counted: page faults on the weights and the
                ask[name]("Warm-up")  # KV cache, thread pools, connections
                time.sleep(PAUSE_S)
            runs: dict[str, list[Answer]] = {name: [] for name in ENGINES}
            for i in range(RUNS):  # alternating: in-process, cove serve, llama_cpp.server, in-process, ...
                for name in ENGINES:
                    time.sleep(PAUSE_S)
                    runs[name].append(ask[name](f"Round {i + 1}"))
    finally:
        runtime.close()

    # The measurement happened: every answer streamed in many pieces.
    for name, answers in runs.items():
        for a in answers:
            assert a.pieces > 8 and a.tokens_per_s > 0 and a.ttft_s > 0, (name, a)

    sec = "serve decode"
    tps = {name: [a.tokens_per_s for a in answers] for name, answers in runs.items()}
    base = median(tps["in-process"])
    record(sec, f"Cove in-process, stream_chat pieces (median of {RUNS})", base, "tok/s",
           note=spread(tps["in-process"]))
    for name in ENGINES[1:]:
        record(sec, f"{name} -> openai client, content chunks (median of {RUNS})", median(tps[name]), "tok/s",
               note=spread(tps[name]))
    for name in ENGINES[1:]:
        ratio = median(tps[name]) / base
        pairs = [a / b for a, b in zip(tps[name], tps["in-process"])]
        record(sec, f"ratio {name} over the API / Cove in-process", ratio, digits=3, target=">= 0.95",
               ok=round(ratio, 3) >= 0.95, note=f"per round {spread(pairs, 3)}")
    own = {name: [a.engine_tps for a in runs[name]] for name in ENGINES[:2]}
    if all(own["cove serve"]):  # where the difference arises: generating, or delivering
        record(sec, "Cove's own decode figure, cove serve's timings / in-process stats",
               median(own["cove serve"]) / median(own["in-process"]), digits=3,
               note=f"{median(own['cove serve']):.1f} / {median(own['in-process']):.1f} tok/s "
                    "(the model's thread alone, before HTTP and the client)")
    for name in ENGINES[1:]:
        cpu_ms = median([a.cpu_s * 1000 for a in runs[name]])
        share = median([a.cpu_s / a.wall_s * 100 for a in runs[name]])
        record(sec, f"the openai client's own CPU time per answer ({name})", cpu_ms, "ms",
               note=f"{share:.0f} % of one core while it streams, beside the engine's {THREADS} threads "
                    f"on {os.cpu_count()} CPUs")
    record(sec, "pieces / tokens per answer, " + ", ".join(ENGINES),
           "; ".join("/".join(f"{a.pieces}:{a.tokens or '?'}" for a in runs[name]) for name in ENGINES))
    for name in ENGINES[1:]:
        same = all(a.text == b.text for a, b in zip(runs[name], runs["in-process"]))
        record(sec, f"{name}: same answer text as in-process (greedy, same seed)", "yes" if same else "no")
    record(sec, "config", f"SmolLM2 Q4_1, n_ctx {N_CTX}, {THREADS} threads, max_tokens {MAX_TOKENS}, "
                          f"temperature {TEMPERATURE}, seed {SEED}, repack {runtime.config.use_extra_bufts}",
           note=f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    watch.record(sec)  # the same runs give both sections' figures

    sec = "serve first token"
    ttft = {name: [a.ttft_s * 1000 for a in answers] for name, answers in runs.items()}
    record(sec, f"Cove in-process, stream_chat call -> first piece (median of {RUNS})", median(ttft["in-process"]),
           "ms", note=spread(ttft["in-process"], 0))
    for name in ENGINES[1:]:
        extra = median(ttft[name]) - median(ttft["in-process"])
        record(sec, f"{name}, request sent -> first content chunk", median(ttft[name]), "ms",
               note=f"{spread(ttft[name], 0)}; {extra:+.0f} ms, x{median(ttft[name]) / median(ttft['in-process']):.2f}"
                    " of in-process")
    if any(a.tokens and a.tokens < MAX_TOKENS for answers in runs.values() for a in answers):
        note("an answer stopped before max_tokens: its decode figure covers fewer tokens")
