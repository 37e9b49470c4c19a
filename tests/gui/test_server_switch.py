"""Settings → Server in the real window, offscreen, with the real SmolLM2: the switch starts the
API, the status line says it runs and whom it serves, and while the window streams an answer an
API request (the official openai client, on 127.0.0.1) is served too, without the GUI stalling
more than it does for the window's answer alone."""

from __future__ import annotations

import socket
import threading
import time

import openai
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication

from desktop.core.system.network_guard import network_purpose
from desktop.ui.settings.server_panel import ServerIndicator, ServerPanel
from tests.gui.conftest import ask

pytestmark = pytest.mark.timeout(300)

LONG = "List 100 animals, one per line, numbered."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StallWatch:
    """The longest gap between beats of a 5 ms timer on the GUI thread."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._beat)
        self.last, self.longest_ms = 0.0, 0.0

    def _beat(self) -> None:
        now = time.perf_counter()
        if self.last:
            self.longest_ms = max(self.longest_ms, (now - self.last) * 1000)
        self.last = now

    def __enter__(self) -> StallWatch:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()


def switch_on(qtbot, app, port: int) -> ServerPanel:
    app.window.open_settings_dialog("Server")
    dialog = app.window.settings_dialog
    panel = dialog.extra_tabs["Server"]
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Server"
    panel.port.setValue(port)
    with qtbot.waitSignal(app.server.state_changed, timeout=20_000) as started:
        qtbot.mouseClick(panel.enabled, Qt.MouseButton.LeftButton, pos=QPoint(8, panel.enabled.height() // 2))
    assert started.args == [True, f"http://127.0.0.1:{port}/v1"]
    return panel


def api_answer(url: str, model: str, result: dict) -> threading.Thread:
    def run() -> None:
        with network_purpose("test: an API client"), \
                openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120) as api:
            result["models"] = [m.id for m in api.models.list()]
            reply = api.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}],
                                                max_tokens=16, temperature=0)
            result["text"] = reply.choices[0].message.content
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_server_switch_serves_the_api_while_the_window_streams(qtbot, cove):
    app = cove
    app.controller.settings.generation.max_tokens = 160
    port = free_port()
    indicator = app.window.findChild(ServerIndicator)
    assert indicator is not None and not indicator.isVisible()
    with StallWatch() as alone:
        ask(qtbot, app, LONG)
    panel = switch_on(qtbot, app, port)
    assert "Running at" in panel.state.text() and f"127.0.0.1:{port}" in panel.state.text()
    app.window.settings_dialog.close()
    assert indicator.isVisible() and indicator.text() == f"API on 127.0.0.1:{port}/v1 · idle"
    seen: list[str] = []
    app.server.activity.connect(seen.append)
    result: dict = {}
    composer = app.window.composer
    qtbot.keyClicks(composer, LONG + " Then more.")
    with StallWatch() as both, qtbot.waitSignal(app.controller.answer_finished, timeout=120_000) as finished:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: app.controller.busy, timeout=10_000)
        thread = api_answer(f"http://127.0.0.1:{port}/v1", "SmolLM2-135M-Instruct.Q4_1", result)
        qtbot.waitUntil(lambda: not thread.is_alive(), timeout=120_000)
    thread.join()
    assert result["models"] == ["SmolLM2-135M-Instruct.Q4_1"] and result["text"].strip()
    assert finished.args[1] == "complete"
    assert "serving 127.0.0.1 · chat" in seen  # the status line said whom it served
    print(f"\nlongest GUI stall: window answer alone {alone.longest_ms:.1f} ms, "
          f"with an API request served meanwhile {both.longest_ms:.1f} ms")
    assert both.longest_ms < max(2 * alone.longest_ms, alone.longest_ms + 100)
    QApplication.processEvents()
