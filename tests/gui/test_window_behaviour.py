"""Window behaviour a person notices: keys, copy buttons, paint rate, restored state, colours."""

from __future__ import annotations

import time

from PySide6.QtCore import QRect, Qt, QUrl
from PySide6.QtGui import QGuiApplication

from desktop.core.conversations.store import COMPLETE, Message
from desktop.core.text.markdown import DARK, LIGHT
from tests.gui.conftest import ask


def test_enter_sends_and_shift_enter_adds_a_line(qtbot, cove):
    composer = cove.window.composer
    qtbot.keyClicks(composer, "first line")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second line")
    assert composer.toPlainText() == "first line\nsecond line"
    assert not cove.window.chat_view.message_widgets()
    with qtbot.waitSignal(cove.controller.answer_finished, timeout=60_000):
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert composer.toPlainText() == ""
    assert cove.window.chat_view.message_widgets()[0].text == "first line\nsecond line"


def test_code_block_copy_button_copies_the_code(qtbot, cove):
    message = Message(1, 1, None, "assistant", "Here:\n\n```python\nprint('hi')\n```\n\nand\n\n```\nls -l\n```",
                      COMPLETE, time.time())
    widget = cove.window.chat_view.add_message(message)
    assert "Copy" in widget.body.toPlainText()
    widget.body.anchorClicked.emit(QUrl("copy:1"))
    assert QGuiApplication.clipboard().text() == "ls -l"
    widget.body.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == "print('hi')"
    assert "copied" in cove.window.statusBar().currentMessage()


def test_streaming_repaints_at_most_about_30_times_a_second(qtbot, cove):
    cove.controller.settings.generation.max_tokens = 150
    tokens: list[float] = []
    paints: list[float] = []
    cove.generation.piece.connect(lambda *_: tokens.append(time.perf_counter()))
    cove.controller.answer_updated.connect(lambda *_: paints.append(time.perf_counter()))
    ask(qtbot, cove, "Tell me a long story about a dragon.")
    assert len(tokens) > 20
    duration = max(paints[-1] - paints[0], 1e-3)
    rate = (len(paints) - 1) / duration
    print(f"{len(tokens)} tokens, {len(paints)} repaints over {duration:.2f} s = {rate:.1f}/s")
    assert rate <= 33, rate
    gaps = [b - a for a, b in zip(paints, paints[1:-1])]  # the last paint comes at once on finish
    assert min(gaps, default=1) >= 0.025


def test_geometry_and_open_conversation_are_restored(qtbot, start_cove):
    app = start_cove()
    ask(qtbot, app, "Remember me.")
    app.window.setGeometry(QRect(4, 30, 790, 520))
    app.window.splitter.setSizes([150, 640])
    chosen = app.window.splitter.sizes()
    opened = app.controller.conversation_id
    app.window.close()
    app.shutdown()

    again = start_cove()
    assert again.window.size().width() == 790 and again.window.size().height() == 520
    assert again.window.splitter.sizes() == chosen
    qtbot.waitUntil(lambda: again.controller.conversation_id == opened, timeout=10_000)
    qtbot.waitUntil(lambda: len(again.window.chat_view.message_widgets()) == 2, timeout=10_000)
    assert again.window.sidebar.current_id() == opened


def test_colours_follow_the_system_scheme(qtbot, cove, monkeypatch):
    import desktop.ui.theme as theme

    hints = QGuiApplication.styleHints()
    # The offscreen platform has no desktop to switch; do what a desktop does: report the scheme
    # and announce the change.
    monkeypatch.setattr(theme, "system_is_dark", lambda: True)
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert cove.window.renderer.theme is DARK
    window_colour = QGuiApplication.palette().color(cove.window.backgroundRole())
    assert window_colour.lightness() < 80
    monkeypatch.setattr(theme, "system_is_dark", lambda: False)
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert cove.window.renderer.theme is LIGHT
    assert QGuiApplication.palette().color(cove.window.backgroundRole()).lightness() > 170


def test_streaming_renders_only_the_growing_tail(qtbot, cove):
    message = Message(99, 1, None, "assistant", "", "streaming", time.time())
    widget = cove.window.chat_view.add_message(message)
    text = ""
    rendered_counts: dict[int, int] = {}
    for i in range(30):
        text += f"Paragraph {i} has some **bold** words.\n\n"
        widget.stream_text(text + "growing tail")
        for view in widget._stream_views[:-1]:
            rendered_counts[id(view)] = rendered_counts.get(id(view), 0)
    first_views = list(widget._stream_views)
    html_before = [v.toHtml() for v in first_views[:-1]]
    widget.stream_text(text + "growing tail, longer now")
    assert widget._stream_views[:-1] == first_views[:-1]
    assert [v.toHtml() for v in widget._stream_views[:-1]] == html_before
    assert "longer now" in widget._stream_views[-1].toPlainText()
    cove.window.chat_view.update_text(99, text + "done")  # the last update: the whole answer
    assert widget._stream_views[:-1] == first_views[:-1]
    assert widget._stream_views[-1].toPlainText().strip() == "done"
    widget.copy_button.click()
    assert QGuiApplication.clipboard().text() == text + "done"


def test_generation_settings_dialog_changes_the_answer_settings_and_reloads_for_context(qtbot, cove):
    qtbot.mouseClick(cove.window.settings_button, Qt.MouseButton.LeftButton)
    dialog = cove.window.settings_dialog
    assert dialog.isVisible()
    panel = dialog.generation
    panel.system_prompt.setPlainText("Always answer in one word.")
    panel.max_tokens.setValue(5)
    panel.n_ctx.setValue(1024)
    with qtbot.waitSignal(cove.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _t: state == "ready"):
        dialog.accept()
    assert "context 1024" in cove.window.model_status.text()
    gen = cove.controller.settings.generation
    assert gen.system_prompt == "Always answer in one word." and gen.max_tokens == 5
    _id, _status, stats = ask(qtbot, cove, "Which colour is grass?")
    assert stats["completion_tokens"] <= 5 and stats["context_size"] == 1024


def test_help_menu_opens_the_log_folder(start_cove, monkeypatch):
    app = start_cove(wait_model=False)
    opened: list[QUrl] = []
    answer = [True]

    class Desktop:  # stands in for the file manager
        @staticmethod
        def openUrl(url: QUrl) -> bool:  # QDesktopServices' name
            opened.append(url)
            return answer[0]

    monkeypatch.setattr("desktop.ui.main_window.QDesktopServices", Desktop)
    [help_menu] = [a.menu() for a in app.window.menuBar().actions() if a.text().replace("&", "") == "Help"]
    [action] = [a for a in help_menu.actions() if a.text() == "Open log folder"]
    action.trigger()
    assert opened == [QUrl.fromLocalFile(str(app.paths.log_dir))]
    assert app.paths.log_dir.is_dir()
    assert not app.window.banner_box.isVisible()
    answer[0] = False  # no file manager: the person is told where the folder is
    action.trigger()
    assert app.window.banner_box.isVisible() and str(app.paths.log_dir) in app.window.banner.text()
