"""Blocking work (network, disk) on a worker thread; results handed back on the GUI thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class BackgroundRunner(QObject):
    """One daemon thread running submitted jobs in order.

    ``submit(job, on_done, on_error)`` never blocks; ``job()`` runs on the worker thread and
    ``on_done(result)`` or ``on_error(exception)`` later on the thread that owns this object (the
    GUI thread). A job that should not outlive a newer request checks a generation number itself.
    """

    _deliver = Signal(object, object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: queue.Queue[tuple[Callable[[], Any], Done | None, Failed | None] | None] = queue.Queue()
        self._deliver.connect(self._on_deliver)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any], on_done: Done | None = None, on_error: Failed | None = None) -> None:
        """Queue ``job``; the callbacks run later on this object's thread."""
        self._jobs.put((job, on_done, on_error))

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread after the queued jobs (bounded wait; a job stuck on the network is left)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, on_done, on_error = item
            try:
                result = job()
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI as a message
                if on_error is not None:
                    self._deliver.emit(on_error, exc)
                continue
            if on_done is not None:
                self._deliver.emit(on_done, result)

    @Slot(object, object)
    def _on_deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        callback(value)
