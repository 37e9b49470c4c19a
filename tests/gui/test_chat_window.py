"""End to end: the real window, the real SmolLM2 model, offscreen."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt

from desktop.core.conversations.store import COMPLETE, STOPPED, Store
from tests.gui.conftest import ANSWER_TIMEOUT_MS, ask

STOP_LIMIT_S = 0.2  # Stop on an idle machine
STOP_LIMIT_TOKENS = 5  # under load: the answer's own time per token, this many times


def test_answer_streams_into_the_view_and_survives_a_restart(qtbot, paths, start_cove):
    app = start_cove()
    app.controller.settings.generation.seed = 3
    app.controller.settings.generation.max_tokens = 40
    updates: list[str] = []
    app.controller.answer_updated.connect(lambda _id, text: updates.append(text))

    message_id, status, stats = ask(qtbot, app, "Name three colours of the rainbow.")

    assert status == COMPLETE
    widgets = app.window.chat_view.message_widgets()
    assert [w.message.role for w in widgets] == ["user", "assistant"]
    answer = widgets[-1].text
    assert answer.strip(), "the answer is empty"
    # Streamed token by token: several growing updates, each a prefix of the final text.
    assert len(updates) >= 3, updates
    assert all(answer.startswith(u) for u in updates)
    assert len(set(updates)) >= 3
    assert widgets[-1].shown_text().strip()
    assert stats["completion_tokens"] > 1 and stats["decode_tokens_per_s"] > 0
    assert "tokens/s" in app.window.stats_label.text()
    assert app.window.sidebar.titles() == ["Name three colours of the rainbow."]

    app.window.close()
    app.shutdown()
    store = Store(paths.database)
    conversation = store.list_conversations()[0]
    stored = store.active_path(conversation.id)
    assert [(m.role, m.status) for m in stored] == [("user", COMPLETE), ("assistant", COMPLETE)]
    assert stored[0].content == "Name three colours of the rainbow."
    assert stored[1].content == answer
    store.close()

    again = start_cove()
    qtbot.waitUntil(lambda: len(again.window.chat_view.message_widgets()) == 2, timeout=10_000)
    shown = [w.text for w in again.window.chat_view.message_widgets()]
    assert shown == ["Name three colours of the rainbow.", answer]
    assert again.window.sidebar.titles() == ["Name three colours of the rainbow."]


def test_stop_ends_generation_within_a_few_tokens_and_keeps_the_partial_answer(qtbot, cove):
    cove.controller.settings.generation.max_tokens = 1000
    cove.controller.settings.generation.temperature = 0.9
    composer = cove.window.composer
    qtbot.keyClicks(composer, "Write a very long story about a lighthouse keeper and the sea, in many chapters.")
    with qtbot.waitSignal(cove.controller.answer_started, timeout=10_000):
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(cove.window.chat_view.message_widgets()[-1].text) > 40, timeout=ANSWER_TIMEOUT_MS)
    assert cove.window.stop_button.isVisible()
    with qtbot.waitSignal(cove.controller.answer_finished, timeout=5_000) as blocker:
        pressed = time.perf_counter()
        qtbot.mouseClick(cove.window.stop_button, Qt.MouseButton.LeftButton)
    elapsed = time.perf_counter() - pressed
    message_id, status, stats = blocker.args
    assert status == STOPPED and stats["stop_reason"] == "cancelled"
    # The stop is honoured at the next token. Within 200 ms on an idle machine; on a loaded one
    # every step takes longer, the stop's included, so the bound is also a ratio to this answer's
    # own wall-clock time per token, measured under the same load.
    token_s = (stats["total_s"] - stats["time_to_first_token_s"]) / max(1, stats["completion_tokens"] - 1)
    limit = max(STOP_LIMIT_S, STOP_LIMIT_TOKENS * token_s)
    print(f"stop took {elapsed * 1000:.1f} ms ({elapsed / token_s:.1f} tokens of {token_s * 1000:.1f} ms)")
    assert elapsed < limit, f"Stop took {elapsed * 1000:.0f} ms, {elapsed / token_s:.1f} tokens' time"

    widget = cove.window.chat_view.widget_for(message_id)
    assert "Stopped" in widget.state.text()
    partial = widget.text
    assert partial.strip()
    assert cove.window.send_button.isVisible() and not cove.window.stop_button.isVisible()
    cove.store.wait_idle()
    store = Store(cove.paths.database)
    stored = store.get_message(message_id)
    assert stored.status == STOPPED and stored.content == partial
    store.close()


def test_regenerate_replaces_the_answer_and_keeps_the_old_one_stored(qtbot, cove):
    first_id, _status, _stats = ask(qtbot, cove, "Suggest a name for a cat.")
    first_text = cove.window.chat_view.widget_for(first_id).text
    cove.controller.settings.generation.seed = 12345
    cove.controller.settings.generation.temperature = 1.0
    with qtbot.waitSignal(cove.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(cove.window.regenerate_button, Qt.MouseButton.LeftButton)
    second_id = blocker.args[0]
    widgets = cove.window.chat_view.message_widgets()
    assert [w.message.role for w in widgets] == ["user", "assistant"]
    assert widgets[-1].message.id == second_id != first_id
    assert widgets[-1].text.strip() and widgets[-1].text != first_text
    cove.store.wait_idle()
    store = Store(cove.paths.database)
    conversation = store.list_conversations()[0]
    assert [m.id for m in store.active_path(conversation.id)][-1] == second_id
    assert store.get_message(first_id).content == first_text  # kept as a branch
    store.close()


def test_second_turn_evaluates_only_the_new_prompt_tokens(qtbot, cove):
    _id, _s, first = ask(qtbot, cove, "What is the capital of France?")
    _id, _s, second = ask(qtbot, cove, "And of Italy?")
    # llama.cpp's own counter of evaluated prompt tokens (n_p_eval), not timing.
    print("turn 1:", first["prompt_tokens"], first["prompt_eval_tokens"],
          "turn 2:", second["prompt_tokens"], second["reused_tokens"], second["prompt_eval_tokens"])
    assert first["prompt_eval_tokens"] == first["prompt_tokens"]
    new_tokens = second["prompt_tokens"] - second["reused_tokens"]
    assert second["reused_tokens"] >= first["prompt_tokens"]
    assert second["prompt_eval_tokens"] <= new_tokens + 1
    assert second["prompt_eval_tokens"] < second["prompt_tokens"] - first["prompt_tokens"] + 2


def test_conversation_list_new_rename_delete(qtbot, cove):
    ask(qtbot, cove, "Say hello.")
    qtbot.mouseClick(cove.window.sidebar.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not cove.window.chat_view.message_widgets())
    assert cove.window.chat_view.empty_hint.isVisible()
    ask(qtbot, cove, "Say goodbye.")
    qtbot.waitUntil(lambda: len(cove.window.sidebar.titles()) == 2)
    assert cove.window.sidebar.titles() == ["Say goodbye.", "Say hello."]

    sidebar = cove.window.sidebar
    sidebar.select_title("Say hello.")
    sidebar.ask_rename(sidebar.current_id())
    sidebar.rename_dialog.setTextValue("Greetings")
    sidebar.rename_dialog.accept()
    qtbot.waitUntil(lambda: "Greetings" in sidebar.titles())

    sidebar.select_title("Say goodbye.")
    doomed = sidebar.current_id()
    sidebar.ask_delete(doomed)
    box = sidebar.confirm_box
    assert box.isVisible() and "Delete “Say goodbye.”" in box.text()
    box.button(box.StandardButton.Cancel).click()  # cancelling keeps it
    qtbot.wait(100)
    assert len(sidebar.titles()) == 2
    sidebar.ask_delete(doomed)
    delete = [b for b in sidebar.confirm_box.buttons() if b.text() == "Delete"][0]
    delete.click()
    qtbot.waitUntil(lambda: sidebar.titles() == ["Greetings"])
    assert cove.window.undo_box.isVisible() and "Say goodbye." in cove.window.undo_label.text()
    qtbot.mouseClick(cove.window.undo_button, Qt.MouseButton.LeftButton)  # changed our mind
    qtbot.waitUntil(lambda: sorted(sidebar.titles()) == ["Greetings", "Say goodbye."])
    assert sidebar.headings() == ["Today"]
