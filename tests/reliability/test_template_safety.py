"""Hostile chat templates inside real model files, through the probe, the runtime and the window.

Copies of the real starter GGUF whose ``tokenizer.chat_template`` is a code-execution payload or
a runaway template (``tests.helpers.gguf_builder.rewrite_metadata``):

(a) the quarantine probe accepts each one with Cove's built-in ChatML template instead
    (``builtin_template`` and a ``template_problem`` that names what the template did), within
    the probe's limits, and no payload's canary file is ever created; so too a template slower
    than Cove's 2 s render limit (the probe used to refuse that model), one that is not valid
    Jinja and one that renders nothing;
(b) the real window opens a runaway-template model: the GUI thread never stalls (a 10 ms
    heartbeat) while the probe child stops the template within its 5 s and the model loads; the
    banner tells the person the model's own template cannot be used and Cove uses its built-in
    ChatML; a question typed into the composer gets a complete answer;
(c) a template that is fine for short conversations but explodes for long ones passes the probe;
    in the window, after a few turns its render is stopped within the 2 s render limit, the answer
    fails with the reason, the banner says Cove switched to its built-in template, the window
    stays responsive, and Regenerate then answers;
and, in-process with the real runtime, every payload and runaway template of the unit tests:
payloads stay inert, runaways are stopped (and the runtime falls back to ChatML) within 2.5 s.
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer

from desktop.core.engine.chat_template import CHATML_TEMPLATE, RENDER_SECONDS
from desktop.core.engine.probe import TEMPLATE_SECONDS, probe_model
from desktop.core.engine.runtime import GenerationError, LoadConfig, Runtime
from tests.gui.conftest import ANSWER_TIMEOUT_MS, ask
from tests.helpers.gguf_builder import STR, rewrite_metadata
from tests.helpers.pace import Pace, budget, reference_s, within_deadline
from tests.helpers.report import report
from tests.unit.core.engine.test_chat_template import MESSAGES, PAYLOADS, RUNAWAYS

# Targets on the reference machine (tests/helpers/pace.py), checked as ratios to a reference
# workload timed here and now, so that they hold on a slower or busier machine too. The template
# limits (TEMPLATE_SECONDS in the probe, RENDER_SECONDS in Cove) are wall-clock deadlines: only
# the time beyond them is scaled.
PROBE_OVERHEAD_S = 55.0  # a probe beyond its template limit (generous: it starts a child process)
STALL_LIMIT_S = 0.25  # the GUI thread's longest stall
IN_PROCESS_OVERHEAD_S = 0.5  # a runaway stopped in-process, beyond the render limit (unwinding)
WINDOW_OVERHEAD_S = 3.0  # the same in the window, plus the answer's bookkeeping

# What the tests below verified, for the one-line summary: payload names; runaway template ->
# seconds until it was stopped (measured in this process), or None when a probe child stopped it
# at its TEMPLATE_SECONDS limit; the GUI thread's longest stalls.
FIGURES: dict[str, object] = {"payloads": set(), "runaways": {}, "stall_ms": [], "passed": set()}

# (a) models: payloads must fail inside the sandbox; runaways must be stopped. Each entry is the
# template and the words the probe's template_problem must contain.
PAYLOAD_MODELS = {
    "CVE-2024-34359 warnings-subclass gadget (Llama Drama)": "unsafe",
    "cycler.__init__.__globals__.os": "unsafe",
    "str.format attribute access": "unsafe",
    "|attr('__class__') filter chain": "__subclasses__",
    "strftime_now.__globals__ open()": "unsafe",
    "messages.append": "unsafe",
}
LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
RUNAWAY_MODELS = {
    "endless nested loops": (LOOP + CHATML_TEMPLATE, f"ran longer than {TEMPLATE_SECONDS:g} s and was stopped"),
    # 8 million characters, or the 5 s limit first on a busy machine
    "output explosion": (RUNAWAYS["output explosion"], ("produced more than", "ran longer than")),
    "'a' * 10**9 (runs at compile time in a plain Jinja sandbox)": ("{{ 'a' * 10**9 }}" + CHATML_TEMPLATE,
                                                                   "huge string"),
    "string doubling with ~": (RUNAWAYS["string doubling with ~"], "huge string"),
    "not valid Jinja": ("{% for message in messages %}{{ message['content'] }", "not valid Jinja"),
    # Busy-waits 3-4 s of wall time (strftime_now('%s') is the epoch second): within the probe's
    # 5 s but over the 2 s Cove allows each render; the probe used to refuse such a model.
    "slower than Cove's render limit": (
        "{% set ns = namespace(start=strftime_now('%s')|int, done=false) %}{% for i in range(100000) %}"
        "{% if ns.done %}{% break %}{% endif %}{% for j in range(1000) %}"
        "{% if strftime_now('%s')|int - ns.start >= 4 %}{% set ns.done = true %}{% break %}{% endif %}"
        "{% endfor %}{% endfor %}" + CHATML_TEMPLATE, ("Cove allows 2 s", "ran longer than")),
    "empty prompt": ("{% for message in messages %}{% endfor %}", "empty prompt"),
}
NOT_RUNAWAY = {"not valid Jinja", "empty prompt"}
# (c): cost grows as len(messages) ** 8 -- 4 messages (the probe) take ~0.02 s, 5 ~0.2 s, 7 > 2 s.
GROWING = ("{% set n = messages|length %}{% for i in range(n ** 4) %}{% for j in range(n ** 4) %}"
           "{% endfor %}{% endfor %}" + CHATML_TEMPLATE)


def make_model(starter: Path, dst: Path, template: str) -> Path:
    """A copy of the starter model whose chat template is ``template``."""
    return rewrite_metadata(starter, dst, {"tokenizer.chat_template": (STR, template)})


class Heartbeat(QObject):
    """A 10 ms timer on the GUI thread; the longest gap between its ticks is the worst stall."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> float:
        """Stop; returns the longest gap in milliseconds."""
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:])) * 1000


def responsive(stall_ms: float, what: str) -> None:
    """The GUI thread's longest stall is within STALL_LIMIT_S, as a ratio to the reference workload."""
    pace = Pace(stall_ms / 1000, reference_s(runs=5))
    assert pace.units < budget(STALL_LIMIT_S), f"{what}: the window froze for {pace}"
    FIGURES["stall_ms"].append(stall_ms)


# -- (a) the probe ------------------------------------------------------------------------------
@pytest.mark.timeout(900)  # 15 probe child processes, several of them stopped at the 5 s template limit
def test_probe_falls_back_to_chatml_for_hostile_templates(starter_model: Path, tmp_path: Path) -> None:
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    cases: list[tuple[str, str, tuple[str, ...]]] = []  # name, template, words the problem must name
    for i, (name, words) in enumerate(PAYLOAD_MODELS.items()):
        cases.append((name, PAYLOADS[name].replace("CANARY", str(canaries / f"canary-{i}")), (words,)))
    cases += [(name, template, (words,) if isinstance(words, str) else words)
              for name, (template, words) in RUNAWAY_MODELS.items()]

    def probe(index: int) -> tuple[str, object, float]:
        name, template, _words = cases[index]
        model = make_model(starter_model, tmp_path / f"hostile-{index}.gguf", template)
        try:
            started = time.monotonic()
            result = probe_model(model, cache_file=tmp_path / f"probes-{index}.json")
            return name, result, time.monotonic() - started
        finally:
            model.unlink()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(probe, range(len(cases))))
    failures = []
    for (name, _template, words), (_name, result, seconds) in zip(cases, outcomes):
        problem = result.config.get("template_problem", "")
        print(f"probe {name!r}: {seconds:.1f} s, ok={result.ok}, problem: {problem or result.message}")
        if not result.ok:  # the person could not use the model at all: the message must say why
            failures.append(f"{name}: refused ({result.message}); the built-in template should have been used")
        elif not (result.config.get("builtin_template") and any(w in problem for w in words)):
            failures.append(f"{name}: config {result.config}")
        if not within_deadline(seconds, TEMPLATE_SECONDS, PROBE_OVERHEAD_S):
            failures.append(f"{name}: the probe took {seconds:.0f} s")
    assert not failures, failures
    assert list(canaries.iterdir()) == [], "a payload ran code in the probe child"
    FIGURES["payloads"].update(PAYLOAD_MODELS)
    FIGURES["runaways"].update({f"probe: {name}": None for name in RUNAWAY_MODELS if name not in NOT_RUNAWAY})
    FIGURES["passed"].add("probe")


# -- in-process, the real runtime -----------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime(starter_model: Path):
    rt = Runtime(starter_model, LoadConfig(n_ctx=512, n_threads=2))
    yield rt
    rt.close()


# Runaways that only the deadline stops take the whole 2 s each; the unit tests run them all, one
# ("loops without calls") is enough here.
DEADLINE_BOUND = {"nested range loops", "exponential macro recursion",
                  "deadline inside a filter that catches ValueError",
                  "a slow filter (a Python loop inside |slice)"}


def test_runtime_keeps_payloads_inert_and_stops_runaways(runtime: Runtime, tmp_path: Path) -> None:
    """The payloads and runaways of the unit tests as the own template of a real loaded model:
    the render fails (or is harmless), the runtime switches to ChatML and says so."""
    from desktop.core.engine.chat_template import ChatTemplate

    def use(template: str) -> None:
        runtime._template = ChatTemplate(template, "<|im_end|>", "")
        runtime.template_problem = ""

    for i, (name, payload) in enumerate(PAYLOADS.items()):
        canary = tmp_path / f"canary-{i}"
        use(payload.replace("CANARY", str(canary)))
        try:
            prompt, tokens, _stop = runtime.render(MESSAGES)
            assert "<class" not in prompt and "<module" not in prompt, name
        except GenerationError as exc:
            assert "Cove switched to its built-in ChatML template" in str(exc), name
            assert not runtime.has_own_template and runtime.template_problem
        assert not canary.exists(), name
        FIGURES["payloads"].add(name)
    assert list(tmp_path.iterdir()) == []

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times: dict[str, float] = {}
    for name, template in RUNAWAYS.items():
        if name in DEADLINE_BOUND:
            continue
        use(template)
        started = time.monotonic()
        with pytest.raises(GenerationError, match="switched to its built-in ChatML template") as caught:
            runtime.render(MESSAGES)
        times[name] = time.monotonic() - started
        assert "chat template" in runtime.template_problem, (name, str(caught.value))
        assert not runtime.has_own_template
        prompt, tokens, _stop = runtime.render(MESSAGES)  # the built-in template works at once
        assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") and tokens
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before
    worst = max(times, key=times.__getitem__)
    print(f"in-process runaways: slowest {worst!r} {times[worst]:.2f} s, peak memory +{growth:.0f} MB")
    reference = reference_s(runs=5)
    slow = {name: round(t, 2) for name, t in times.items()
            if not within_deadline(t, RENDER_SECONDS, IN_PROCESS_OVERHEAD_S, reference)}
    assert not slow, (slow, f"one reference unit {reference * 1000:.1f} ms here")
    assert growth < 500, growth
    FIGURES["runaways"].update(times)
    FIGURES["passed"].add("runtime")


# -- (b) the window opens a runaway-template model ----------------------------------------------------
def test_window_opens_a_runaway_template_model_with_chatml(qtbot, start_cove, starter_model: Path,
                                                           tmp_path: Path) -> None:
    model = make_model(starter_model, tmp_path / "runaway-template.gguf", LOOP + CHATML_TEMPLATE)
    app = start_cove()
    app.controller.settings.generation.seed = 7
    app.controller.settings.generation.max_tokens = 24
    beat = Heartbeat()
    beat.start()
    started = time.monotonic()
    with qtbot.waitSignal(app.controller.problem, timeout=120_000,
                          check_params_cb=lambda message: "chat template" in message) as problem:
        app.window.open_model_file(str(model))
    qtbot.waitUntil(lambda: app.controller.model_ready and app.controller.model_path == str(model),
                    timeout=10_000)
    load_s = time.monotonic() - started
    stall = beat.stop()
    banner = app.window.banner.text()
    print(f"runaway-template model loaded in {load_s:.1f} s, GUI max stall {stall:.0f} ms; banner: {banner}")
    assert app.window.banner_box.isVisible() and banner == problem.args[0]
    assert "runaway-template: the model's own chat template cannot be used" in banner
    assert f"ran longer than {TEMPLATE_SECONDS:g} s and was stopped" in banner
    assert "Cove uses its built-in ChatML template" in banner
    assert app.controller.model_info["own_template"] is False
    responsive(stall, "loading the model")
    assert within_deadline(load_s, TEMPLATE_SECONDS, PROBE_OVERHEAD_S), load_s

    message_id, status, stats = ask(qtbot, app, "What colour is the sky on a clear day?")
    text = app.window.chat_view.widget_for(message_id).text
    print(f"answer with the built-in template: {text!r}")
    assert status == "complete" and text.strip() and stats["completion_tokens"] > 0
    FIGURES["runaways"]["window: endless nested loops"] = None
    FIGURES["passed"].add("window load")


# -- (c) a template that explodes only in long conversations ----------------------------------------
def test_template_that_explodes_in_long_conversations(qtbot, paths, start_cove, starter_model: Path,
                                                      tmp_path: Path) -> None:
    model = make_model(starter_model, tmp_path / "growing-template.gguf", GROWING)
    verdict = probe_model(model, cache_file=paths.probe_file)  # what the window will find cached
    assert verdict.ok and not verdict.config.get("builtin_template"), verdict
    app = start_cove()
    gen = app.controller.settings.generation
    gen.seed, gen.max_tokens, gen.system_prompt = 7, 8, ""
    with qtbot.waitSignal(app.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _text: state == "failed" or
                          state == "ready" and app.controller.model_path == str(model)):
        app.window.open_model_file(str(model))
    assert app.controller.model_ready and app.controller.model_info["own_template"] is True
    assert not app.window.banner_box.isVisible()

    beat = Heartbeat()
    completed = 0
    for turn in range(1, 9):
        # Typing is synthesised on the GUI thread (no event loop between key clicks), so the
        # heartbeat starts once the question is typed: it measures the app, not the test's typing.
        app.window.composer.setFocus()
        qtbot.keyClicks(app.window.composer, f"Question {turn}: name one colour.")
        beat.start()
        started = time.monotonic()
        with qtbot.waitSignal(app.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS) as blocker:
            qtbot.keyClick(app.window.composer, Qt.Key.Key_Return)
        message_id, status, stats = blocker.args
        elapsed = time.monotonic() - started
        stall = beat.stop()
        print(f"turn {turn}: {status} in {elapsed:.2f} s, GUI max stall {stall:.0f} ms")
        if turn > 1:  # the first answer also pays for the window's first message widgets
            responsive(stall, f"turn {turn}")
        if status != "complete":
            break
        completed += 1
    assert completed >= 2, "the template should work for short conversations"
    assert status == "failed", status
    error = stats["error"]
    assert f"ran longer than {RENDER_SECONDS:g} s and was stopped" in error, error
    assert "Cove switched to its built-in ChatML template" in error and "Regenerate" in error
    assert within_deadline(elapsed, RENDER_SECONDS, WINDOW_OVERHEAD_S), elapsed  # stopped at the limit

    assert app.window.banner_box.isVisible() and app.window.banner.text() == error
    assert app.window.chat_view.widget_for(message_id).state.text() == f"Failed: {error}"
    FIGURES["runaways"]["window: grows with the conversation"] = elapsed

    assert app.window.regenerate_button.isEnabled()
    beat.start()
    with qtbot.waitSignal(app.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(app.window.regenerate_button, Qt.MouseButton.LeftButton)
    stall = beat.stop()
    new_id, status, stats = blocker.args
    text = app.window.chat_view.widget_for(new_id).text
    print(f"regenerated with the built-in template: {status} {text!r}, GUI max stall {stall:.0f} ms")
    assert new_id != message_id and status == "complete" and text.strip()
    responsive(stall, "regenerating")
    FIGURES["passed"].add("window turns")


def test_summary() -> None:
    """The run's one-line figure (from the tests above that ran)."""
    payloads, runaways, stalls = FIGURES["payloads"], FIGURES["runaways"], FIGURES["stall_ms"]
    if FIGURES["passed"] != {"probe", "runtime", "window load", "window turns"}:
        pytest.skip("the tests above did not all pass")
    measured = [t for t in runaways.values() if t is not None]
    in_probe = len(runaways) - len(measured)
    worst = max(measured, default=0.0)
    report("chat templates", f"{len(payloads)} code-execution payloads inert (canary never created), "
                             f"{len(runaways)} runaway templates stopped in <= {worst:.1f} s "
                             f"({in_probe} of them in the probe child, at its {TEMPLATE_SECONDS:g} s limit), "
                             f"GUI max stall {max(stalls):.0f} ms")
