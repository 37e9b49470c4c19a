"""Start-up after a crash, safe mode, and answers kept on disk while they stream."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import Qt

from desktop.core.conversations.store import STREAMING
from desktop.core.engine.loader import read_crash_marker, write_crash_marker
from tests.gui.conftest import ANSWER_TIMEOUT_MS


def test_a_model_that_crashed_while_loading_is_not_loaded_again(qtbot, paths, start_cove, starter_model):
    write_crash_marker(paths, starter_model, {"use_extra_bufts": True})
    app = start_cove(wait_model=False)
    assert app.window.banner_box.isVisible()
    assert "closed unexpectedly while loading SmolLM2-135M-Instruct.Q4_1.gguf" in app.window.banner.text()
    qtbot.waitUntil(lambda: "crashed" in app.window.model_status.text(), timeout=10_000)
    assert not app.controller.model_ready
    assert read_crash_marker(paths) is None  # told once
    # The person can still choose to try it again.
    picker = app.window.model_picker
    qtbot.waitUntil(lambda: picker.count() > 0, timeout=5_000)
    with qtbot.waitSignal(app.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as blocker:
        picker.activated.emit(picker.findData(str(starter_model)))
    assert blocker.args[0] == "ready"


def test_safe_mode_loads_no_model(qtbot, start_cove):
    app = start_cove(wait_model=False, safe_mode=True)
    qtbot.waitUntil(lambda: "Safe mode" in app.window.model_status.text(), timeout=10_000)
    qtbot.wait(300)
    assert not app.controller.model_ready and not app.controller.model_path


def test_a_streaming_answer_is_on_disk_while_it_streams_and_marked_incomplete(qtbot, cove):
    """Pieces reach the disk while the answer is still being written (how often is
    tests/unit/core/conversations/test_answer_recorder.py's business, with a clock it controls)."""
    cove.controller.settings.generation.max_tokens = 2000
    cove.controller.settings.generation.temperature = 0.9
    composer = cove.window.composer
    qtbot.keyClicks(composer, "Write a very long essay about the history of ships, in many sections.")
    with qtbot.waitSignal(cove.controller.answer_started, timeout=10_000) as started:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    message_id = started.args[0].id
    qtbot.waitUntil(lambda: len(cove.window.chat_view.widget_for(message_id).text) > 0, timeout=ANSWER_TIMEOUT_MS)
    db = sqlite3.connect(cove.paths.database)
    try:
        # The user's question was committed before generation started.
        assert db.execute("SELECT content FROM messages WHERE role='user'").fetchone()[0].startswith("Write a very")
        seen: list[tuple[str, str]] = []

        def on_disk() -> bool:
            seen.append(db.execute("SELECT content, status FROM messages WHERE id=?", (message_id,)).fetchone())
            return bool(seen[-1][0])

        qtbot.waitUntil(on_disk, timeout=ANSWER_TIMEOUT_MS)
        content, status = seen[-1]
        assert cove.controller.busy, "the answer ended before any of it reached the disk"
        assert status == STREAMING
    finally:
        db.close()
    with qtbot.waitSignal(cove.controller.answer_finished, timeout=5_000):
        cove.controller.stop()
    assert cove.window.chat_view.widget_for(message_id).text.startswith(content)


def test_an_unusable_database_is_reported_and_sending_does_not_hang(qtbot, paths, start_cove):
    paths.database.mkdir(parents=True)  # a folder where the database file should be
    app = start_cove(wait_model=False)
    qtbot.waitUntil(lambda: app.window.banner_box.isVisible(), timeout=10_000)
    assert "is a folder, not a conversation database" in app.window.banner.text()
    app.controller.model_ready = True  # even with a model, nothing is sent that could not be kept
    composer = app.window.composer
    qtbot.keyClicks(composer, "Hello")
    with qtbot.waitSignal(app.controller.problem, timeout=2_000) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert "cannot be saved" in blocker.args[0]
    assert not app.controller.busy and composer.toPlainText() == "Hello"  # the draft is kept


def test_safe_mode_loads_a_chosen_model_with_conservative_settings(qtbot, start_cove, starter_model):
    app = start_cove(wait_model=False, safe_mode=True)
    qtbot.waitUntil(lambda: app.window.model_picker.count() > 0, timeout=10_000)
    with qtbot.waitSignal(app.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as blocker:
        app.window.open_model_file(str(starter_model))
    assert blocker.args[0] == "ready"
    info = app.controller.model_info
    assert info["safe_mode"] and not info["repacking"] and info["n_ctx"] == 2048
    assert "safe mode" in app.window.model_status.text()
