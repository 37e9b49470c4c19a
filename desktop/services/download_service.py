"""The download queue as a Qt service: progress and results arrive as signals on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.core.downloads.queue import DONE, REMOVED, UNFINISHED, DownloadQueue, QueueItem
from desktop.services.background import Worker


class DownloadService(QObject):
    """Owns a :class:`DownloadQueue` (its own worker thread).

    Every call into the queue (which saves its state file with fsync and may delete partial files)
    runs on a control thread, never on the GUI thread. The queue is created when the download pane
    first opens (:meth:`start`); unfinished downloads from an earlier run come back paused and
    resume from their partial files when the person presses Resume.

    Signals:
        item_changed(object QueueItem): any change of one item (progress ~10 times a second at most)
        model_downloaded(object QueueItem): an item finished and was verified; its files are in place
        failed(str): a change to the queue could not be made (its state file could not be saved...);
            the message is for a person. A download's own failure is an item state, not this.
    """

    item_changed = Signal(object)
    model_downloaded = Signal(object)
    failed = Signal(str)
    _from_worker = Signal(object)

    def __init__(self, client_factory: Callable[[], Any], models_dir: Callable[[], Path], state_file: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client_factory = client_factory
        self._models_dir = models_dir
        self._state_file = state_file
        self._queue: DownloadQueue | None = None
        self._control = Worker("cove-download-control", self._on_failed, self)
        self.items: dict[str, QueueItem] = {}  # the latest state of each item, as last signalled
        self._from_worker.connect(self._on_item)

    def _ensure(self) -> DownloadQueue:
        """The queue (control thread only)."""
        if self._queue is None:
            self._queue = DownloadQueue(self._client_factory, self._models_dir(), self._state_file,
                                        self._from_worker.emit)
        return self._queue

    def start(self) -> None:
        """Create the queue off the GUI thread and show what an earlier run left unfinished."""
        self._control.submit(lambda: self._ensure().items(),
                             lambda items: [self._on_item(item) for item in items])

    def add(self, files: Sequence[Any], label: str) -> None:
        """Queue one model's files (item_changed tells its id and state)."""
        files = tuple(files)
        self._control.submit(lambda: self._ensure().add(files, label))

    def pause(self, item_id: str) -> None:
        """Pause (the partial file is kept)."""
        self._control.submit(lambda: self._ensure().pause(item_id))

    def resume(self, item_id: str) -> None:
        """Continue from the partial file."""
        self._control.submit(lambda: self._ensure().resume(item_id))

    def cancel(self, item_id: str) -> None:
        """Stop and delete the partial file."""
        self._control.submit(lambda: self._ensure().cancel(item_id))

    def forget(self, item_id: str) -> None:
        """Remove a finished, failed or cancelled item from the list."""
        self._control.submit(lambda: self._ensure().forget(item_id))

    def unfinished(self) -> list[QueueItem]:
        """Items still queued, downloading, paused or failed (as last signalled)."""
        return [item for item in self.items.values() if item.state in UNFINISHED]

    def set_models_dir(self, folder: Path) -> None:
        """The models folder moved (only allowed with no unfinished download): later ones go there."""
        self._control.submit(lambda: setattr(self._ensure(), "models_dir", Path(folder)))

    def shutdown(self) -> None:
        """Stop the worker; a running download stays resumable from its partial file."""
        self._control.stop(2.0)
        if self._queue is not None:
            self._queue.close(timeout=3.0)

    def _on_failed(self, exc: BaseException) -> None:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        self.failed.emit(f"The download list could not be updated: {detail}.")

    @Slot(object)
    def _on_item(self, item: QueueItem) -> None:
        if item.state == REMOVED:
            self.items.pop(item.id, None)
        else:
            self.items[item.id] = item
        self.item_changed.emit(item)
        if item.state == DONE:
            self.model_downloaded.emit(item)
