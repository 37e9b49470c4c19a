"""The generation service re-emits its worker's signals on the GUI thread; failures are logged
and reported as signals (no model is needed to see either)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt

from desktop.core.system.paths import app_paths
from desktop.services.generation_service import GenerationService


def _on_gui_thread(record: list) -> object:
    def slot(*args: object) -> None:
        record.append((args, threading.current_thread() is threading.main_thread()))
    return slot


def test_answers_come_from_the_service_on_the_gui_thread(qtbot, tmp_path: Path):
    paths = app_paths(tmp_path / "cove").ensure()
    writes: list[tuple] = []
    service = GenerationService(paths, lambda *args: writes.append(args))
    loading: list = []
    failed_loads: list = []
    failed_answers: list = []
    # Direct: each slot runs where the service's signal is emitted, so it tells which thread that is.
    service.model_loading.connect(_on_gui_thread(loading), Qt.ConnectionType.DirectConnection)
    service.model_failed.connect(_on_gui_thread(failed_loads), Qt.ConnectionType.DirectConnection)
    service.failed.connect(_on_gui_thread(failed_answers), Qt.ConnectionType.DirectConnection)
    try:
        missing = str(tmp_path / "missing.gguf")
        with qtbot.waitSignal(service.model_failed, timeout=60_000):
            service.load(missing, {})
        request = service.generate([{"role": "user", "content": "Hello"}], {}, message_id=1)
        qtbot.waitUntil(lambda: bool(failed_answers), timeout=10_000)
    finally:
        service.shutdown()
    assert loading == [((missing,), True)]
    [((path, message), on_gui)] = failed_loads
    assert path == missing and on_gui and "missing.gguf" in message
    assert failed_answers == [((request, "No model is loaded. Pick one in the model menu."), True)]
    assert writes == []  # nothing was generated, so nothing was written
