"""Privacy: no connection nobody asked for, every attempt listed, tokens never written to disk."""

from __future__ import annotations

import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from PySide6.QtCore import Qt, QTimer

from desktop.core.system.network_guard import NetworkRefused, network_purpose
from tests.gui.conftest import ANSWER_TIMEOUT_MS, ask
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


def test_a_full_chat_session_opens_no_connection(qtbot, start_cove):
    AUDITED.clear()
    _AUDITING.set()
    try:
        app = start_cove()
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


def test_unrequested_connections_are_blocked_and_listed_requested_ones_allowed(qtbot, start_cove):
    app = start_cove(wait_model=False)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        with pytest.raises(NetworkRefused):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        with pytest.raises(urllib.error.URLError) as caught:  # a library phoning home gets the same answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/telemetry", timeout=2)
        assert isinstance(caught.value.reason, NetworkRefused), caught.value
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


class KeyringCalls:
    """What the test's keyring backend saw: each call and whether it ran on the GUI thread; the
    slow backend blocks until ``release`` is set (the test's teardown sets it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.entered = threading.Event()
        self.returned = threading.Event()
        self.release = threading.Event()

    def record(self, name: str) -> None:
        self.calls.append((name, threading.current_thread() is threading.main_thread()))
        self.entered.set()


class SlowKeyring(keyring.backend.KeyringBackend):
    """A keyring that does not answer, like a locked Secret Service waiting for a prompt."""

    priority = 0  # never picked up by keyring's chainer for later tests: set explicitly only

    def __init__(self, calls: KeyringCalls) -> None:
        super().__init__()
        self.calls = calls

    def _block(self, name: str) -> None:
        self.calls.record(name)
        self.calls.release.wait(60)
        self.calls.returned.set()

    def get_password(self, service, username):
        self._block("get")

    def set_password(self, service, username, password):
        self._block("set")

    def delete_password(self, service, username):
        self._block("delete")


class LockedKeyring(SlowKeyring):
    """A keyring that refuses: locked."""

    def get_password(self, service, username):
        self.calls.record("get")
        raise keyring.errors.KeyringLocked("locked")

    set_password = delete_password = get_password


class MissingKeyring(SlowKeyring):
    """No keyring at all (keyring's own headless-Linux answer)."""

    def get_password(self, service, username):
        self.calls.record("get")
        raise keyring.errors.NoKeyringError("no backend")

    set_password = delete_password = get_password


class WorkingKeyring(SlowKeyring):
    """A keyring that works (the desktop's Secret Service, Keychain or Credential Manager)."""

    store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        self.calls.record("get")
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.calls.record("set")
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.calls.record("delete")
        self.store.pop((service, username), None)


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def event_loop_turns(qtbot) -> None:
    """A timer posted now fires: the GUI thread is free to run its event loop."""
    fired: list[bool] = []
    QTimer.singleShot(0, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=10_000)


@pytest.fixture
def keyring_calls(backend: type[keyring.backend.KeyringBackend]) -> Iterator[KeyringCalls]:
    """``backend`` is the keyring during the test; what it saw. Blocked calls are released after."""
    calls = KeyringCalls()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend(calls))
    try:
        yield calls
    finally:
        calls.release.set()
        keyring.set_keyring(previous)
        WorkingKeyring.store.clear()


@pytest.mark.parametrize("backend, expected", [
    (MissingKeyring, "no system keyring is available"),
    (LockedKeyring, "locked"),
    (SlowKeyring, "did not answer"),
    (WorkingKeyring, "stored in the system keyring"),
])
def test_token_is_kept_off_the_disk_whatever_the_keyring_does(qtbot, paths, start_cove, backend, expected,
                                                              keyring_calls, capfd):
    calls, slow = keyring_calls, backend is SlowKeyring
    token = "hf_TestTokenThatMustNeverReachTheDisk_1234"
    app = start_cove(wait_model=False)
    assert app.window.isVisible()  # shown before the model or the keyring has said anything
    qtbot.keyClicks(app.window.composer, "typing works")
    assert app.window.composer.toPlainText() == "typing works"
    qtbot.waitUntil(lambda: app.controller.model_ready, timeout=60_000)
    app.window.open_settings_dialog("Privacy")  # asks the keyring whether a token is stored
    panel = app.window.settings_dialog.privacy
    qtbot.waitUntil(calls.entered.is_set, timeout=10_000)
    if slow:
        # The keyring call blocks; the window does not wait for it: its event loop keeps turning,
        # and the keyring's verdict ("did not answer") arrives while the call is still blocked.
        event_loop_turns(qtbot)
        assert not calls.returned.is_set()
    qtbot.waitUntil(lambda: expected in panel.token_status.text(), timeout=30_000)
    assert not (slow and calls.returned.is_set())
    panel.token_field.setText(token)
    qtbot.mouseClick(panel.save_token, Qt.MouseButton.LeftButton)
    event_loop_turns(qtbot)
    qtbot.waitUntil(lambda: "A token is saved" in panel.token_status.text(), timeout=30_000)
    assert expected in panel.token_status.text()
    assert ("memory" in panel.token_status.text()) == (backend is not WorkingKeyring)
    assert app.secrets.token_present
    ask(qtbot, app, "Still chatting?")
    app.window.settings_dialog.reject()
    app.window.close()
    app.shutdown()  # settings are written now: the token must not be among them
    assert [name for name, on_gui_thread in calls.calls if on_gui_thread] == [], "a keyring call blocked the window"
    found = files_containing(paths.data_dir.parent, token.encode())
    out, err = capfd.readouterr()
    name = backend.__name__.removesuffix("Keyring").lower()
    print(f"{name} keyring: {len(calls.calls)} keyring calls, none on the GUI thread; token in {len(found)} files")
    report(f"keyring {name}", f"window usable while the keyring call {'blocked' if slow else 'ran'}, "
                              f"token in {len(found)} files")
    assert found == [] and token not in out and token not in err
