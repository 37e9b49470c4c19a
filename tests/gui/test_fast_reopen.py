"""Fast reopen: a conversation's KV cache is kept on disk, so coming back evaluates only new tokens."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import ask

QUESTIONS = ["Describe the water cycle in detail.", "Now explain how clouds form.",
             "What about rain and snow?", "And how do rivers reach the sea?"]


def test_reopening_a_long_conversation_evaluates_only_the_new_turn(qtbot, paths, start_cove):
    app = start_cove()
    app.controller.settings.generation.max_tokens = 80
    app.controller.settings.generation.seed = 2
    turns = [ask(qtbot, app, q)[2] for q in QUESTIONS]
    long_id = app.controller.conversation_id
    assert turns[-1]["prompt_tokens"] > 200
    # Another conversation takes the model's cache; the long one's is saved as we leave it.
    qtbot.mouseClick(app.window.sidebar.new_button, Qt.MouseButton.LeftButton)
    ask(qtbot, app, "Unrelated: name a fruit.")
    assert paths.kv_state(long_id).is_file()
    app.window.close()
    app.shutdown()

    again = start_cove()
    again.controller.settings.generation.max_tokens = 40
    again.controller.open_conversation(long_id)
    qtbot.waitUntil(lambda: len(again.window.chat_view.message_widgets()) == 2 * len(QUESTIONS), timeout=10_000)
    _id, _status, reopened = ask(qtbot, again, "Summarise all of that in one sentence.")
    turn2 = turns[1]
    print(f"turn 2: {turn2['prompt_eval_tokens']} prompt tokens evaluated, first token "
          f"{turn2['time_to_first_token_s']:.3f} s; reopened: {reopened['restored_tokens']} tokens restored, "
          f"{reopened['prompt_eval_tokens']} of {reopened['prompt_tokens']} evaluated, first token "
          f"{reopened['time_to_first_token_s']:.3f} s")
    assert reopened["restored_tokens"] >= turns[-1]["prompt_tokens"]
    assert reopened["prompt_eval_tokens"] <= reopened["prompt_tokens"] - reopened["reused_tokens"] + 1
    # The reopened turn costs about what turn 2 cost, not the whole history (from llama.cpp's counters).
    assert reopened["prompt_eval_tokens"] <= 1.5 * turn2["prompt_eval_tokens"]
    assert reopened["prompt_eval_tokens"] < reopened["prompt_tokens"] / 5

    # Deleting the conversation deletes its cache too: it holds the conversation's tokens.
    again.controller.delete_conversation(long_id)
    qtbot.waitUntil(lambda: not paths.kv_state(long_id).exists(), timeout=5_000)
