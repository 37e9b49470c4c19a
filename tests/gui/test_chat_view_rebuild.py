"""A streamed answer shows as it ended when the view builds its widgets again (after scrolling up,
a new message rebuilds the view)."""

from __future__ import annotations

import time

from desktop.core.conversations.records import COMPLETE, STREAMING, Message
from desktop.core.text.markdown import MarkdownRenderer
from desktop.ui.chat.chat_view import ChatView
from desktop.ui.theme import current_theme


def test_a_streamed_answer_is_rebuilt_as_it_ended(qtbot):
    view = ChatView(MarkdownRenderer(current_theme()))
    qtbot.addWidget(view)
    now = time.time()
    view.set_messages([Message(1, 1, None, "user", "Hi", COMPLETE, now)], 0)
    view.add_message(Message(2, 1, 1, "assistant", "", STREAMING, now))
    view.update_reasoning(2, "Greet back.", 1.5, True)
    view.update_text(2, "Hello there!")
    view.update_reasoning(2, "Greet back.", 1.5, False)
    view.finish_message(2, COMPLETE)
    view.set_messages(list(view._messages), 0)
    rebuilt = view.widget_for(2)
    assert rebuilt.text == "Hello there!" and rebuilt.thinking.reasoning == "Greet back."
    assert rebuilt.status == COMPLETE and rebuilt.state.text() == ""  # not marked incomplete
