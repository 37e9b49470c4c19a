"""Privacy: no connection nobody asked for, every attempt listed, tokens never written to disk."""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from PySide6.QtCore import Qt

from desktop.core.system.network_guard import NetworkRefused, network_purpose
from tests.gui.conftest import ANSWER_TIMEOUT_MS, ask, start_app
from tests.helpers.report import report

AUDITED: list[tuple[str, object]] = []
_AUDITING = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if not _AUDITING.is_set():
        return
    if event == "socket.connect" and getattr(args[0], "family", None) in (socket.AF_INET, socket.AF_INET6):
        AUDITED.append((event, args[1]))
    elif event == "socket.getaddrinfo" and args[0] is not None:
        AUDITED.append((event, args[0]))


sys.addaudithook(_audit)


def test_a_full_chat_session_opens_no_connection(qtbot, paths):
    AUDITED.clear()
    _AUDITING.set()
    try:
        app = start_app(qtbot, paths)
        app.controller.settings.generation.max_tokens = 24
        ask(qtbot, app, "Hello, who are you?")
        ask(qtbot, app, "Tell me more.")
        with qtbot.waitSignal(app.controller.answer_finished, timeout=ANSWER_TIMEOUT_MS):
            qtbot.mouseClick(app.window.regenerate_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(app.window.sidebar.new_button, Qt.MouseButton.LeftButton)
        ask(qtbot, app, "A new conversation.")
        app.window.open_settings_dialog("Privacy")
        panel = app.window.settings_dialog.privacy
        assert panel.empty.isVisible() and panel.rows() == []
        app.window.settings_dialog.reject()
        app.window.close()
        app.shutdown()
    finally:
        _AUDITING.clear()
    attempts = list(AUDITED)
    report("network", f"{len(attempts)} connection attempts in a full chat session")
    assert attempts == []


def test_unrequested_connections_are_blocked_and_listed_requested_ones_allowed(qtbot, paths):
    app = start_app(qtbot, paths, wait_model=False)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        with pytest.raises(NetworkRefused):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        with pytest.raises(Exception):  # a library phoning home gets the same answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/telemetry", timeout=2)
        with network_purpose("download a model you chose"):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        server.close()
    app.window.open_settings_dialog("Privacy")
    panel = app.window.settings_dialog.privacy
    qtbot.waitUntil(lambda: len(panel.rows()) >= 3, timeout=5_000)
    rows = panel.rows()
    blocked = [r for r in rows if r[5] == "blocked"]
    allowed = [r for r in rows if r[5] == "allowed"]
    assert len(blocked) >= 2 and all(r[4] == "nobody asked for it" for r in blocked)
    assert allowed and allowed[-1][2] == "127.0.0.1" and allowed[-1][3] == str(port)
    assert allowed[-1][4] == "download a model you chose"
    app.window.settings_dialog.reject()
    app.window.close()
    app.shutdown()


class SlowKeyring(keyring.backend.KeyringBackend):
    """A keyring that never answers, like a locked Secret Service waiting for a prompt."""

    priority = 0  # never picked up by keyring's chainer for later tests: set explicitly only

    def get_password(self, service, username):  # noqa: ANN001, ANN201
        time.sleep(60)

    def set_password(self, service, username, password):  # noqa: ANN001, ANN201
        time.sleep(60)

    def delete_password(self, service, username):  # noqa: ANN001, ANN201
        time.sleep(60)


class LockedKeyring(SlowKeyring):
    """A keyring that refuses: locked."""

    def get_password(self, service, username):  # noqa: ANN001, ANN201
        raise keyring.errors.KeyringLocked("locked")

    set_password = delete_password = get_password


class MissingKeyring(SlowKeyring):
    """No keyring at all (keyring's own headless-Linux answer)."""

    def get_password(self, service, username):  # noqa: ANN001, ANN201
        raise keyring.errors.NoKeyringError("no backend")

    set_password = delete_password = get_password


class WorkingKeyring(SlowKeyring):
    """A keyring that works (the desktop's Secret Service, Keychain or Credential Manager)."""

    store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):  # noqa: ANN001, ANN201
        return self.store.get((service, username))

    def set_password(self, service, username, password):  # noqa: ANN001, ANN201
        self.store[(service, username)] = password

    def delete_password(self, service, username):  # noqa: ANN001, ANN201
        self.store.pop((service, username), None)


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize("backend, expected", [
    (MissingKeyring, "no system keyring is available"),
    (LockedKeyring, "locked"),
    (SlowKeyring, "did not answer"),
    (WorkingKeyring, "stored in the system keyring"),
])
def test_token_is_kept_off_the_disk_whatever_the_keyring_does(qtbot, paths, backend, expected, capfd):
    previous = keyring.get_keyring()
    keyring.set_keyring(backend())
    token = "hf_TestTokenThatMustNeverReachTheDisk_1234"
    try:
        started = time.monotonic()
        app = start_app(qtbot, paths, wait_model=False)
        qtbot.waitUntil(lambda: app.window.isVisible(), timeout=3_000)
        usable = time.monotonic() - started
        qtbot.keyClicks(app.window.composer, "typing works")
        assert app.window.composer.toPlainText() == "typing works"
        qtbot.waitUntil(lambda: app.controller.model_ready, timeout=60_000)
        app.window.open_settings_dialog("Privacy")
        panel = app.window.settings_dialog.privacy
        panel.token_field.setText(token)
        ticks: list[float] = []
        timer_started = time.monotonic()
        qtbot.mouseClick(panel.save_token, Qt.MouseButton.LeftButton)
        while time.monotonic() - timer_started < 0.3:  # the click returned at once; the GUI keeps running
            qtbot.wait(10)
            ticks.append(time.monotonic())
        assert max(b - a for a, b in zip(ticks, ticks[1:])) < 0.2
        qtbot.waitUntil(lambda: expected in panel.token_status.text(), timeout=10_000)
        assert "A token is saved" in panel.token_status.text()
        assert ("memory" in panel.token_status.text()) == (backend is not WorkingKeyring)
        assert app.secrets.token_present
        ask(qtbot, app, "Still chatting?")
        app.window.settings_dialog.reject()
        app.window.close()
        app.shutdown()
    finally:
        keyring.set_keyring(previous)
        WorkingKeyring.store.clear()
    found = files_containing(paths.data_dir.parent, token.encode())
    out, err = capfd.readouterr()
    print(f"{backend.__name__}: window usable after {usable:.2f} s, token found in {len(found)} files")
    report(f"keyring {backend.__name__.removesuffix('Keyring').lower()}",
           f"window usable in {usable:.2f} s, token in {len(found)} files")
    assert usable < 3.0
    assert found == [] and token not in out and token not in err
