"""The log from the window's side: the debug switch on the Privacy tab, and a failed background
job in the log with its traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop.core.system import logs
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import load_settings
from desktop.ui.settings.privacy_panel import DEBUG_LOG_LABEL


@pytest.fixture
def log_file(paths: AppPaths) -> Iterator[Path]:
    """The log of this test's data folder, as the window's start-up sets it up; closed afterwards."""
    path = logs.setup_logging(paths)
    yield path
    logs.stop_logging()
    logs.set_debug(False)


def test_the_debug_switch_is_off_by_default_and_kept_when_turned_on(qtbot, start_cove, paths, log_file):
    app = start_cove(wait_model=False, safe_mode=True)
    app.window.open_settings_dialog("Privacy")
    switch = app.window.settings_dialog.privacy.debug_log
    assert switch.text() == DEBUG_LOG_LABEL and switch.isVisible() and not switch.isChecked()
    assert logs.content("hello") == "<5 chars>"
    qtbot.mouseClick(switch, Qt.MouseButton.LeftButton)
    assert switch.isChecked() and logs.debug_enabled() and "hello" in logs.content("hello")
    app.window.settings_dialog.reject()
    app.window.close()
    app.shutdown()
    assert load_settings(paths.settings_file).debug_log is True

    again = start_cove(wait_model=False, safe_mode=True)
    again.window.open_settings_dialog("Privacy")
    switch = again.window.settings_dialog.privacy.debug_log
    assert switch.isChecked()
    qtbot.mouseClick(switch, Qt.MouseButton.LeftButton)
    assert not logs.debug_enabled() and not again.settings.debug_log


def test_a_failed_background_job_is_in_the_log_with_its_traceback(qtbot, start_cove, log_file):
    app = start_cove(wait_model=False, safe_mode=True)

    def count_the_bricks(_store) -> int:
        return len("bricks") // 0

    with qtbot.waitSignal(app.store.error, timeout=10_000):
        app.store.submit(count_the_bricks)
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "in count_the_bricks" in text
    assert "ZeroDivisionError" in text and "desktop.services" in text
