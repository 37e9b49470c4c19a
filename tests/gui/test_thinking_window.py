"""A thinking model in the real window: SmolLM2's weights with QwQ's chat template (its generation
prompt opens ``<think>`` when thinking is on, the DeepSeek R1 style), offscreen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from desktop.core.conversations.store import COMPLETE, STOPPED, Store
from desktop.core.engine.answer_loop import ThinkingRequest
from tests.gui.conftest import ANSWER_TIMEOUT_MS, LOAD_TIMEOUT_MS, ask
from tests.helpers.templated_model import with_template

INCOMPLETE = "Incomplete — Cove closed while this answer was being written"


def load_thinker(qtbot, app, model: Path) -> None:
    with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS * 3,
                          check_params_cb=lambda state, _text: state in ("ready", "failed")) as blocker:
        app.controller.select_model(str(model))
    assert blocker.args[0] == "ready", blocker.args


def choose(controls, label: str) -> None:
    index = controls.think.findText(label)
    assert index >= 0, [controls.think.itemText(i) for i in range(controls.think.count())]
    controls.think.setCurrentIndex(index)
    controls.think.activated.emit(index)


def test_thinking_streams_apart_is_bounded_stopped_and_stored(qtbot, paths, start_cove, starter_model):
    model = with_template(starter_model, "Qwen-QwQ-32B", paths.data_dir / "smol-qwq.gguf")
    app = start_cove()
    load_thinker(qtbot, app, model)
    window, controller = app.window, app.controller
    controls = window.thinking_controls
    assert controls.isVisible() and controls.think.isEnabled()
    choose(controls, "Think: on")
    generation = controller.settings.generation
    generation.temperature, generation.seed, generation.max_tokens, generation.thinking_budget = 0.0, 3, 40, 4

    seen: list[tuple[str, bool, bool, bool, str]] = []

    def watch(message_id: int, text: str, _seconds: float, thinking: bool) -> None:
        widget = window.chat_view.widget_for(message_id)
        seen.append((text, thinking, widget.thinking.isVisible(), widget.thinking.expanded, widget.state.text()))

    controller.reasoning_updated.connect(watch)
    message_id, status, stats = ask(qtbot, app, "What is the capital of France?")
    assert status == COMPLETE
    live = [s for s in seen if s[1]]
    assert live, "no live thinking was shown"
    assert all(visible and expanded for _t, _th, visible, expanded, _st in live)  # live, unfolded
    assert all(state != INCOMPLETE for *_rest, state in seen)  # the first answer of a new chat
    widget = window.chat_view.widget_for(message_id)
    assert stats["reasoning_tokens"] == 4 and stats["thinking_closed_by"] == "budget"
    assert widget.text.strip(), "no answer followed the thinking"
    assert widget.thinking.isVisible() and not widget.thinking.expanded  # folded once the answer started
    assert widget.thinking.toggle.text().startswith("Thought")
    assert "<think>" not in widget.text and "</think>" not in widget.shown_text(), (widget.text, widget.thinking.reasoning)
    assert "4 thinking +" in window.stats_label.text() and "budget reached" in window.stats_label.text()
    qtbot.mouseClick(widget.thinking.toggle, Qt.MouseButton.LeftButton)
    assert widget.thinking.expanded and widget.thinking.text.isVisible()  # it can be unfolded again
    reasoning, answer = widget.thinking.reasoning, widget.text

    # Stop while thinking: the reasoning is kept, and the answer says it has none yet.
    generation.thinking_budget, generation.max_tokens = 0, 400
    started = []
    controller.reasoning_updated.connect(lambda mid, _t, _s, thinking: thinking and not started and (
        started.append(mid), controller.stop()))
    stopped_id, status, _stats = ask(qtbot, app, "Write a very long story about a lighthouse keeper.")
    assert status == STOPPED and started == [stopped_id]
    stopped = window.chat_view.widget_for(stopped_id)
    assert stopped.thinking.reasoning.strip() and not stopped.text.strip()
    assert stopped.state.text() == "Stopped while thinking — there is no answer yet"
    cid = controller.conversation_id

    app.store.wait_idle()  # the answer's last write is queued on the store's thread
    store = Store(paths.database)
    stored = store.active_path(cid)
    store.close()
    assert (stored[1].reasoning, stored[1].content) == (reasoning, answer)
    assert stored[1].thinking_s > 0 and stored[3].status == STOPPED and stored[3].reasoning.strip()

    # After a restart the same blocks come back, folded, with the same marks.
    app.window.close()
    app.shutdown()
    again = start_cove()
    load_thinker(qtbot, again, model)
    qtbot.waitUntil(lambda: len(again.window.chat_view.message_widgets()) == 4, timeout=10_000)
    shown = again.window.chat_view.message_widgets()
    assert shown[1].thinking.reasoning == reasoning and shown[1].text == answer
    assert not shown[1].thinking.expanded and shown[1].thinking.toggle.text().startswith("Thought")
    assert shown[3].state.text() == "Stopped while thinking — there is no answer yet"

    # The next turn leaves the earlier reasoning out of the prompt, and reuses the cache.
    again.controller.settings.generation.thinking_budget = 3
    again.controller.settings.generation.max_tokens = 12
    runtime = again.generation._worker._runtime
    _id, status, follow = ask(qtbot, again, "And of Italy?")
    history = [{"role": m.role, "content": m.content, "reasoning_content": m.reasoning} for m in stored[:2]]
    request = ThinkingRequest(think=True)
    prompt, _tokens, _stop = runtime.render(runtime.prompt_messages(history, request), {"enable_thinking": True})
    bare = [{k: v for k, v in m.items() if k != "reasoning_content"} for m in history]
    assert prompt == runtime.render(bare, {"enable_thinking": True})[0]  # the reasoning is not in the prompt
    assert answer.strip() in prompt and f"{reasoning.strip()}</think>" not in prompt
    assert follow["reused_tokens"] > 0 and follow["prompt_eval_tokens"] < follow["prompt_tokens"]


def test_answer_now_and_a_model_that_does_not_think(qtbot, paths, start_cove, starter_model):
    app = start_cove()
    controls = app.window.thinking_controls
    assert not controls.isVisible()  # SmolLM2's own template does not think: no control
    model = with_template(starter_model, "Qwen-QwQ-32B", paths.data_dir / "smol-qwq.gguf")
    load_thinker(qtbot, app, model)
    choose(controls, "Think: on")
    generation = app.controller.settings.generation
    generation.temperature, generation.max_tokens, generation.thinking_budget = 0.0, 60, 0
    offered = []

    def on_reasoning(_mid: int, _text: str, _seconds: float, thinking: bool) -> None:
        if thinking and not offered:
            offered.append(controls.answer_now_button.isVisible())
            qtbot.mouseClick(controls.answer_now_button, Qt.MouseButton.LeftButton)

    app.controller.reasoning_updated.connect(on_reasoning)
    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, "Write a long poem about the sea.")
    with qtbot.waitSignal(app.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    _mid, status, stats = blocker.args
    assert offered == [True] and stats["thinking_closed_by"] == "answer_now"
    assert not controls.answer_now_button.isVisible()
    choose(controls, "Think: off")
    assert app.controller.settings.generation.think == "off"
    _mid, status, stats = ask(qtbot, app, "Say hello.")
    assert stats["reasoning_tokens"] == 0


def test_markers_set_for_a_model_reach_its_runtime(qtbot, start_cove, starter_model):
    app = start_cove()
    assert app.controller.model_info["thinking"]["thinks"] is False
    with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda state, _text: state == "ready"):
        app._set_thinking_markers(str(starter_model), ["<reflect>", "</reflect>"])
    thinking = app.controller.model_info["thinking"]
    assert (thinking["open"], thinking["close"], thinking["source"]) == ("<reflect>", "</reflect>", "override")
    assert app.window.thinking_controls.isVisible()
    assert app.controller.settings.thinking_markers == {str(starter_model): ["<reflect>", "</reflect>"]}
