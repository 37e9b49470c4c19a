"""The real Cove window, offscreen, with the real starter model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desktop.app import CoveApp
from desktop.core.system.paths import AppPaths

LOAD_TIMEOUT_MS = 60_000
ANSWER_TIMEOUT_MS = 60_000


def start_app(qtbot, paths: AppPaths, *, wait_model: bool = True, **kwargs) -> CoveApp:  # noqa: ANN001
    """Build and show Cove on ``paths``; wait until the starter model is ready."""
    from desktop.ui.theme import apply_palette
    from PySide6.QtWidgets import QApplication

    apply_palette(QApplication.instance())
    app = CoveApp(paths, **kwargs)
    qtbot.addWidget(app.window)
    if wait_model:
        with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS,
                              check_params_cb=lambda state, _text: state in ("ready", "failed")) as blocker:
            app.start()
        assert blocker.args[0] == "ready", blocker.args
    else:
        app.start()
    return app


@pytest.fixture
def cove(qtbot, paths: AppPaths) -> Iterator[CoveApp]:  # noqa: ANN001
    """A started Cove with the starter model loaded; shut down after the test."""
    app = start_app(qtbot, paths)
    app.controller.settings.generation.seed = 7
    app.controller.settings.generation.max_tokens = 48
    yield app
    app.window.close()
    app.shutdown()


def ask(qtbot, app: CoveApp, text: str, timeout: int = ANSWER_TIMEOUT_MS) -> tuple[int, str, dict]:  # noqa: ANN001
    """Type ``text`` into the composer, press Enter, wait for the answer; returns its finish args."""
    from PySide6.QtCore import Qt

    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    with qtbot.waitSignal(app.controller.answer_finished, timeout=timeout) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    return tuple(blocker.args)  # type: ignore[return-value]
