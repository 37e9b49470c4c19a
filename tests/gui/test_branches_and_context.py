"""Versions of answers and questions (branches), and conversations longer than the context window."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import ANSWER_TIMEOUT_MS, ask


def regenerate(qtbot, app) -> int:
    with qtbot.waitSignal(app.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(app.window.regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.window.chat_view.message_widgets()[-1].version_text() != "", timeout=5_000)
    return blocker.args[0]


def test_regenerated_answers_are_versions_that_can_be_walked_and_survive_restart(qtbot, start_cove):
    app = start_cove()
    gen = app.controller.settings.generation
    gen.max_tokens, gen.temperature, gen.seed = 24, 1.0, 11
    first_id, _s, _st = ask(qtbot, app, "Invent a name for a boat.")
    first_text = app.window.chat_view.widget_for(first_id).text
    gen.seed = 99
    second_id = regenerate(qtbot, app)
    answer = app.window.chat_view.message_widgets()[-1]
    assert answer.message.id == second_id and answer.version_text() == "2/2"
    second_text = answer.text
    qtbot.mouseClick(answer.previous_version, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.window.chat_view.message_widgets()[-1].message.id == first_id, timeout=5_000)
    shown = app.window.chat_view.message_widgets()[-1]
    assert shown.text == first_text and shown.version_text() == "1/2"
    assert not shown.previous_version.isEnabled() and shown.next_version.isEnabled()
    app.window.close()
    app.shutdown()

    again = start_cove()  # the shown version and the other one survive a restart
    qtbot.waitUntil(lambda: len(again.window.chat_view.message_widgets()) == 2, timeout=10_000)
    shown = again.window.chat_view.message_widgets()[-1]
    assert shown.message.id == first_id and shown.version_text() == "1/2"
    qtbot.mouseClick(shown.next_version, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: again.window.chat_view.message_widgets()[-1].message.id == second_id, timeout=5_000)
    assert again.window.chat_view.message_widgets()[-1].text == second_text


def test_editing_a_question_keeps_the_original_as_a_version(qtbot, cove):
    ask(qtbot, cove, "What is the capital of Spain?")
    original_answer = cove.window.chat_view.message_widgets()[-1].text
    question = cove.window.chat_view.message_widgets()[0]
    qtbot.mouseClick(question.edit_button, Qt.MouseButton.LeftButton)
    dialog = cove.window.edit_dialog
    assert dialog.isVisible() and dialog.textValue() == "What is the capital of Spain?"
    dialog.setTextValue("What is the capital of Portugal?")
    with qtbot.waitSignal(cove.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS):
        dialog.accept()
    widgets = cove.window.chat_view.message_widgets()
    assert [w.text for w in widgets][0] == "What is the capital of Portugal?"
    assert widgets[0].version_text() == "2/2"
    qtbot.mouseClick(widgets[0].previous_version, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cove.window.chat_view.message_widgets()[0].text == "What is the capital of Spain?",
                    timeout=5_000)
    assert cove.window.chat_view.message_widgets()[-1].text == original_answer


def test_a_conversation_three_times_longer_than_the_context_keeps_answering(qtbot, cove):
    cove.controller.apply_generation_settings(cove.controller.settings.generation.__class__(
        n_ctx=256, max_tokens=48, temperature=0.7, seed=3))
    qtbot.waitUntil(lambda: cove.controller.model_ready and cove.controller.model_info["n_ctx"] == 256,
                    timeout=60_000)
    total = 0
    turn = 0
    while total < 3 * 256:
        turn += 1
        question = f"Question {turn}: tell me a fact about the number {turn}."
        _id, status, stats = ask(qtbot, cove, question)
        assert status == "complete" and stats["completion_tokens"] > 0
        total += len(question) // 4 + stats["completion_tokens"]  # ~4 characters a token
    assert stats["dropped_messages"] > 0
    marker = cove.window.chat_view.context_marker
    assert marker.isVisible() and "no longer fit" in marker.text()
    assert cove.window.chat_view.total_messages() == 2 * turn  # nothing is removed from the view or the history
    print(f"{turn} turns, about {total} tokens in a 256-token context; {stats['dropped_messages']} messages left out")
