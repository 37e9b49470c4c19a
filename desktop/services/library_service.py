"""The model library off the GUI thread: scans, imports, deletes and folder moves on a worker.

Every piece of disk work (listing, reading GGUF headers, probing, copying, deleting, moving) runs
on one worker thread, one task at a time; results and progress come back as signals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.engine.loader import ModelFileError
from desktop.core.engine.thinking import describe_thinking
from desktop.core.library.disk import LibrarySnapshot
from desktop.core.library.entries import LibraryError
from desktop.core.library.folder import Cancelled, MoveError, follow_move, move_models, plan_move
from desktop.core.library.importer import import_model_file
from desktop.core.library.model_library import ModelLibrary
from desktop.core.models.metadata import MetadataCache
from desktop.core.system.atomic import write_json_atomic
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings
from desktop.services.background import Worker

PROGRESS_INTERVAL_S = 0.05
EXPECTED = (Cancelled, ModelFileError, LibraryError, MoveError)  # told to the person as they are; one log line
METADATA_FILE = "model_metadata.json"


class LibraryService(QObject):
    """Lists, imports, deletes and moves models on a worker thread.

    Signals:
        listed(object): a :class:`desktop.core.library.disk.LibrarySnapshot` after each refresh.
        busy(str): a long task began; the text says what it is ("Copying x.gguf into the library").
        progress(object, object): bytes done and bytes in all of the task under way (ints that may
            pass 2**31, hence object), at most about 20 times a second.
        done(str): a task finished; the message is for the person.
        failed(str): a task failed or was cancelled; the message is for the person.
        changed(): models were added, removed or moved: model pickers should list them again.
        folder_changed(str): the models folder is now this path (the setting is already saved).
    """

    listed = Signal(object)
    busy = Signal(str)
    progress = Signal(object, object)
    done = Signal(str)
    failed = Signal(str)
    changed = Signal()
    folder_changed = Signal(str)

    def __init__(self, paths: AppPaths, settings: Settings, parent: QObject | None = None, *,
                 library: ModelLibrary | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.settings = settings
        self.library = library or ModelLibrary(paths, settings)
        self.snapshot: LibrarySnapshot | None = None  # the latest listing
        self.task = ""  # what the worker is busy with, "" when idle
        self._cancel = threading.Event()
        self._metadata = MetadataCache(paths.data_dir / METADATA_FILE, describe_template=describe_thinking)
        self._runner = Worker("cove-library", self._on_failed, self, expected=EXPECTED)
        self._last_progress = 0.0
        # Set by the app: a reason the folder cannot change now ("" when it can), e.g. downloads
        # still writing partial files into the current folder.
        self.folder_change_refusal: Callable[[], str] | None = None

    @property
    def models_dir(self) -> Path:
        """The models folder in use (computed from the settings: no disk access)."""
        return self.library.models_dir

    def refresh(self) -> None:
        """List the library (with metadata and disk use) on the worker; ``listed`` follows."""
        self._runner.submit(lambda: self.library.snapshot(self._metadata), self._on_listed, self._on_list_error)

    def import_file(self, path: str, link: bool = False) -> None:
        """Check, probe and copy ``path`` into the models folder (``link``: remember it in place)."""
        name = Path(path).name
        label = f"Checking and linking {name}" if link else f"Checking and copying {name} into the library"

        def work() -> str:
            entry = import_model_file(Path(path), self.paths, library=self.library, link=link,
                                      progress=self._report, cancel=self._cancel)
            return f"{entry.name} was {'linked' if link else 'copied'} into the library."
        self._start(label, work)

    def delete(self, key: str) -> None:
        """Delete (or forget) the model whose entry key is ``key``, as its deletion plan says."""
        def work() -> str:
            entry = next((e for e in self.library.entries() if e.key == key), None)
            if entry is None:
                raise LibraryError(f"{Path(key).name} is no longer in the library.")
            plan = self.library.delete(entry)
            return f"{entry.name} was {'deleted' if plan.action == 'delete' else 'removed from the list'}."
        self._start(f"Deleting {Path(key).name}", work)

    def change_folder(self, folder: str, move: bool) -> None:
        """Use ``folder`` as the models folder; with ``move``, move the models there first (a copy
        across disks reports progress and can be cancelled: then nothing changes)."""
        target = Path(folder).expanduser().absolute()
        source = self.models_dir
        refusal = self.folder_change_refusal() if self.folder_change_refusal is not None else ""
        if refusal:
            self.failed.emit(refusal)
            return

        def work() -> dict[str, str]:
            if move:
                return move_models(plan_move(source, target), self._report, self._cancel, self.paths.probe_file)
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MoveError(f"Cove cannot create the folder {target}: {exc.strerror or exc}.") from exc
            return {}

        def finished(moved: dict[str, str]) -> str:
            self.settings.models_dir = "" if target == self.paths.models_dir else str(target)
            follow_move(self.settings, moved)
            data = self.settings.to_dict()  # taken on the GUI thread, written on the worker
            self._runner.submit(lambda: write_json_atomic(self.paths.settings_file, data), None,
                                lambda exc: self.failed.emit(describe(exc, "Saving the settings")))
            self.folder_changed.emit(str(target))
            count = len(moved)
            return (f"Moved {count} model file{'s' if count != 1 else ''} to {target}." if move
                    else f"Cove now keeps models in {target}.")
        self._start(f"Moving the models to {target}" if move else f"Changing the models folder to {target}",
                    work, finished)

    def cancel(self) -> None:
        """Ask the task under way to stop (a copy stops within one chunk; nothing is left behind)."""
        self._cancel.set()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until queued work is done (tests and shutdown only)."""
        return self._runner.wait_idle(timeout)

    def shutdown(self) -> None:
        """Cancel the task under way and stop the worker (bounded wait)."""
        self._cancel.set()
        self._runner.stop()

    # -- internals ------------------------------------------------------------------------------
    def _start(self, label: str, work: Callable[[], Any], finished: Callable[[Any], str] | None = None) -> None:
        if self.task:
            self.failed.emit(f"Cove is still busy ({self.task}); try again when it is done.")
            return
        self.task = label
        self._cancel.clear()
        self.busy.emit(label)

        def on_done(result: Any) -> None:
            self.task = ""
            message = finished(result) if finished is not None else str(result)
            self.done.emit(message)
            self.changed.emit()
            self.refresh()

        def on_error(exc: BaseException) -> None:
            self.task = ""
            self.failed.emit(describe(exc, label))
            self.refresh()
        self._runner.submit(work, on_done, on_error)

    def _report(self, done: int, total: int) -> None:
        """Progress from the worker, thinned out so the GUI paints a few times a second."""
        now = time.monotonic()
        if done < total and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self.progress.emit(done, total)

    def _on_listed(self, snapshot: LibrarySnapshot) -> None:
        self.snapshot = snapshot
        self.listed.emit(snapshot)

    def _on_list_error(self, exc: BaseException) -> None:
        self.failed.emit(describe(exc, "Listing the models"))

    def _on_failed(self, exc: BaseException) -> None:
        self.failed.emit(describe(exc, "A library task"))


def describe(exc: BaseException, task: str) -> str:
    """A sentence for the person about a failed task."""
    if isinstance(exc, Cancelled):
        return "Cancelled: nothing was changed."
    if isinstance(exc, (ModelFileError, LibraryError, MoveError)):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{task} failed: {exc.strerror or exc}."
    return f"{task} failed unexpectedly: {exc}"  # the worker logged its traceback
