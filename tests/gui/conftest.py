"""The real Cove window, offscreen, with the real starter model.

Every test that starts the app does it through the ``start_cove`` fixture (or ``cove``, built on
it): whatever happens in the test, each app it started is shut down in the fixture's teardown,
so its process-wide network guard, its threads and its database never outlive the test.
tests/reliability, tests/e2e and tests/bench share these fixtures through their conftest.py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.app import CoveApp
from desktop.core.system import network_guard
from desktop.core.system.paths import AppPaths
from desktop.ui.theme import apply_palette

LOAD_TIMEOUT_MS = 60_000
ANSWER_TIMEOUT_MS = 60_000

StartCove = Callable[..., CoveApp]


def _start(qtbot, paths: AppPaths, started: list[CoveApp], wait_model: bool, **kwargs) -> CoveApp:
    """Build and show Cove on ``paths`` (remembered in ``started`` before anything can fail)."""
    apply_palette(QApplication.instance())
    app = CoveApp(paths, **kwargs)
    started.append(app)
    qtbot.addWidget(app.window)
    if wait_model:
        with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS,
                              check_params_cb=lambda state, _text: state in ("ready", "failed")) as blocker:
            app.start()
        assert blocker.args[0] == "ready", blocker.args
    else:
        app.start()
    return app


def _guard_left_installed() -> bool:
    """Whether some network guard still refuses connections nobody asked for (a loopback lookup
    is refused exactly then; it never leaves the machine)."""
    try:
        socket.getaddrinfo("127.0.0.1", 9, proto=socket.IPPROTO_TCP)
    except network_guard.NetworkRefused:
        return True
    return False


def _shut_down(apps: list[CoveApp]) -> None:
    """Close and shut down every app, newest first, even when one of them fails to; then check that
    no network guard is left behind (removing any, so the next test starts clean)."""
    errors: list[BaseException] = []
    for app in reversed(apps):
        try:
            app.window.close()
            app.shutdown()
        except Exception as exc:  # noqa: BLE001 - the others must still be shut down; re-raised below
            errors.append(exc)
        finally:
            network_guard.uninstall(app.network)
    leaked = _guard_left_installed()
    if leaked:  # repair, so that later tests do not fail for this reason too
        network_guard._installed.clear()
    if errors:
        raise errors[0]
    assert not leaked, "a network guard outlived the app that installed it"


@pytest.fixture
def start_cove(qtbot, paths: AppPaths) -> Iterator[StartCove]:
    """``start_cove(paths=None, *, wait_model=True, **CoveApp options)`` builds and shows Cove on
    ``paths`` (the test's data folder by default), waiting for the starter model unless told not
    to. Every app it started is shut down after the test, pass or fail; a test may also shut one
    down itself (to restart on the same data): shutting down twice is harmless."""
    started: list[CoveApp] = []

    def start(on: AppPaths | None = None, *, wait_model: bool = True, **kwargs) -> CoveApp:
        return _start(qtbot, on or paths, started, wait_model, **kwargs)

    try:
        yield start
    finally:
        _shut_down(started)


@pytest.fixture
def cove(start_cove: StartCove) -> CoveApp:
    """A started Cove with the starter model loaded; shut down after the test."""
    app = start_cove()
    app.controller.settings.generation.seed = 7
    app.controller.settings.generation.max_tokens = 48
    return app


def ask(qtbot, app: CoveApp, text: str, timeout: int = ANSWER_TIMEOUT_MS) -> tuple[int, str, dict]:
    """Type ``text`` into the composer, press Enter, wait for the answer; returns its finish args."""
    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    with qtbot.waitSignal(app.controller.answer_finished, timeout=timeout) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    return tuple(blocker.args)  # type: ignore[return-value]
