"""Bad input through the real window: a clear message naming the problem, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from desktop.core.conversations.store import COMPLETE
from tests.gui.conftest import ask


def choose_in_file_dialog(qtbot, app, path: Path) -> None:
    """Click 'Open model…', pick ``path`` in the real (Qt) file dialog and press Open."""
    qtbot.mouseClick(app.window.open_model_button, Qt.MouseButton.LeftButton)
    dialog = app.window.file_dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    dialog.setDirectory(str(path.parent))
    dialog.selectFile(str(path))
    dialog.accept()


def drop_on_window(app, path: Path) -> None:
    """Drop ``path`` on the window as a file manager would."""
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    app.window.dropEvent(event)


def pick_vanished_library_model(qtbot, app, path: Path, starter_model: Path) -> None:
    """A model in the picker whose file was deleted since it was listed."""
    path.write_bytes(b"")
    app.library.remember(path)
    app.controller.refresh_models()
    picker = app.window.model_picker
    qtbot.waitUntil(lambda: picker.findData(str(path.resolve())) >= 0, timeout=5_000)
    path.unlink()
    index = picker.findData(str(path.resolve()))
    picker.setCurrentIndex(index)
    picker.activated.emit(index)


def make_cases(tmp_path: Path, starter_model: Path) -> dict[str, tuple[Path, str]]:
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("These are my notes, not a model.\n")
    truncated = tmp_path / "half.gguf"
    with starter_model.open("rb") as src:
        truncated.write_bytes(src.read(5_000_000))
    folder = tmp_path / "a-folder.gguf"
    folder.mkdir()
    return {
        "not gguf": (not_gguf, "not a GGUF model file"),
        "truncated": (truncated, "truncated"),
        "directory": (folder, "is a folder"),
        "missing": (tmp_path / "gone.gguf", "does not exist"),
    }


def act(qtbot, app, case: str, path: Path, starter_model: Path) -> None:
    if case in ("not gguf", "truncated"):
        choose_in_file_dialog(qtbot, app, path)
    elif case == "directory":
        drop_on_window(app, path)
    else:
        pick_vanished_library_model(qtbot, app, path, starter_model)


@pytest.mark.parametrize("case", ["not gguf", "truncated", "directory", "missing"])
def test_bad_model_file_gives_a_message_and_the_window_keeps_working(qtbot, cove, tmp_path, starter_model, case):
    first_id, _status, _stats = ask(qtbot, cove, "Say hi.")
    before = [w.text for w in cove.window.chat_view.message_widgets()]
    path, expected = make_cases(tmp_path, starter_model)[case]

    with qtbot.waitSignal(cove.controller.problem, timeout=30_000) as blocker:
        act(qtbot, cove, case, path, starter_model)
    message = blocker.args[0]
    assert expected in message and path.name in message, message
    assert cove.window.banner_box.isVisible() and expected in cove.window.banner.text()
    # The previous model stays loaded and usable, and the history is untouched.
    qtbot.waitUntil(lambda: cove.controller.model_ready, timeout=10_000)
    assert [w.text for w in cove.window.chat_view.message_widgets()] == before
    _id, status, _stats = ask(qtbot, cove, "Say bye.")
    assert status == COMPLETE
    assert len(cove.window.chat_view.message_widgets()) == 4
    assert not cove.window.banner_box.isVisible()  # a successful send clears the message


def test_empty_prompt_is_refused_with_a_message(qtbot, cove):
    composer = cove.window.composer
    qtbot.keyClicks(composer, "   ")
    with qtbot.waitSignal(cove.controller.problem, timeout=2_000) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert "empty" in blocker.args[0]
    assert cove.window.banner_box.isVisible()
    assert not cove.window.chat_view.message_widgets()
    assert not cove.controller.busy
    _id, status, _stats = ask(qtbot, cove, "Hello?")
    assert status == COMPLETE


def test_a_dropped_model_file_is_loaded(qtbot, cove, tmp_path, starter_model):
    copy = tmp_path / "my-model.gguf"
    copy.write_bytes(starter_model.read_bytes())
    with qtbot.waitSignal(cove.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as blocker:
        drop_on_window(cove, copy)
    assert blocker.args[0] == "ready"
    assert cove.controller.model_path == str(copy)
    qtbot.waitUntil(lambda: cove.window.model_picker.findData(str(copy)) >= 0, timeout=5_000)
    assert cove.window.model_picker.currentData() == str(copy)
    _id, status, _stats = ask(qtbot, cove, "Hi!")
    assert status == COMPLETE
