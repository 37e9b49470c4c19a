"""The download queue as a Qt service: progress and results arrive as signals on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.core.download_queue import DONE, DownloadQueue, QueueItem


class DownloadService(QObject):
    """Owns a :class:`DownloadQueue` (its own worker thread).

    The queue is created on first use, so nothing about downloads runs (or reads its state file)
    until the person opens the download pane; unfinished downloads from an earlier run come back
    paused and resume from their partial files when the person presses Resume.

    Signals:
        item_changed(object QueueItem): any change of one item (progress ~10 times a second at most)
        model_downloaded(object QueueItem): an item finished and was verified; its files are in place
    """

    item_changed = Signal(object)
    model_downloaded = Signal(object)
    _from_worker = Signal(object)

    def __init__(self, client_factory: Callable[[], Any], models_dir: Callable[[], Path], state_file: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client_factory = client_factory
        self._models_dir = models_dir
        self._state_file = state_file
        self._queue: DownloadQueue | None = None
        self._from_worker.connect(self._on_item)

    @property
    def queue(self) -> DownloadQueue:
        """The queue (started on first use)."""
        if self._queue is None:
            self._queue = DownloadQueue(self._client_factory, self._models_dir(), self._state_file,
                                        self._from_worker.emit)
        return self._queue

    def has_state(self) -> bool:
        """True when an earlier run left downloads to show (without starting the queue)."""
        return self._queue is not None or self._state_file.exists()

    def add(self, files: Sequence[Any], label: str) -> str:
        """Queue one model's files; returns the item id."""
        return self.queue.add(files, label)

    def pause(self, item_id: str) -> None:
        """Pause (the partial file is kept)."""
        self.queue.pause(item_id)

    def resume(self, item_id: str) -> None:
        """Continue from the partial file."""
        self.queue.resume(item_id)

    def cancel(self, item_id: str) -> None:
        """Stop and delete the partial file."""
        self.queue.cancel(item_id)

    def forget(self, item_id: str) -> None:
        """Remove a finished, failed or cancelled item from the list."""
        self.queue.forget(item_id)

    def items(self) -> list[QueueItem]:
        """Every item, in queue order."""
        return self.queue.items()

    def set_models_dir(self, folder: Path) -> None:
        """The person moved the models folder: later downloads go there (a paused one starts over
        there, since its partial file stayed behind)."""
        if self._queue is not None:
            self._queue.models_dir = Path(folder)

    def shutdown(self) -> None:
        """Stop the worker; a running download stays resumable from its partial file."""
        if self._queue is not None:
            self._queue.close(timeout=3.0)

    @Slot(object)
    def _on_item(self, item: QueueItem) -> None:
        self.item_changed.emit(item)
        if item.state == DONE:
            self.model_downloaded.emit(item)
