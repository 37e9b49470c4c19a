"""The conversation store on a thread of its own; results come back on the GUI thread."""

from __future__ import annotations

import queue
import sqlite3
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.core.conversations.recovery import open_store_with_recovery
from desktop.core.system.locks import READ_ONLY_MESSAGE
from desktop.core.conversations.store import Store, StoreError

Job = Callable[[Store], Any]
Done = Callable[[Any], None]
Failed = Callable[[str], None]


class StoreService(QObject):
    """Owns the one :class:`Store` connection on a worker thread.

    ``submit(job, on_done)`` may be called from any thread; ``job(store)`` runs on the store
    thread in submission order and ``on_done(result)`` runs later on the GUI thread.

    The database is opened with :func:`open_store_with_recovery`: a damaged file is set aside and
    what can be read is recovered (``notice`` says so). ``read_only=True`` (another Cove window
    owns the data) opens it read-only; every write then fails with a message saying why.

    Signals:
        error(str): a job failed; the message is for a person.
        opened(): the database is open and migrated.
        notice(str): something the person should know about the database (it was recovered).
    """

    error = Signal(str)
    opened = Signal()
    notice = Signal(str)
    _deliver = Signal(object, object)

    def __init__(self, path: Path, parent: QObject | None = None, *, read_only: bool = False) -> None:
        super().__init__(parent)
        self._path = path
        self.read_only = read_only
        self._jobs: queue.Queue[tuple[Job, Done | None, Failed | None] | None] = queue.Queue()
        self._deliver.connect(self._on_deliver)
        self._thread = threading.Thread(target=self._run, name="cove-store", daemon=True)
        self.available = False
        self.failure = ""  # why the database could not be opened, for a person

    def start(self) -> None:
        """Open the database on the store thread."""
        self._thread.start()

    def submit(self, job: Job, on_done: Done | None = None, on_error: Failed | None = None) -> None:
        """Queue ``job``; never blocks. ``on_done(result)`` or ``on_error(message)`` runs later on
        the GUI thread; ``error`` is emitted for every failure too. With no database the job is
        dropped and reported the same way."""
        if self.failure:
            self._deliver.emit(self._failed(on_error), self.failure)
            return
        self._jobs.put((job, on_done, on_error))

    def update_message(self, message_id: int, content: str, status: str | None, stats: dict | None) -> None:
        """Queue a message update; safe to call from any thread (the generation thread does)."""
        self.submit(lambda store: store.update_message(message_id, content, status=status, stats=stats))

    def stop(self, timeout: float = 5.0) -> None:
        """Finish queued jobs, close the database and end the thread (bounded wait)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every job queued so far has run (tests and shutdown only)."""
        done = threading.Event()
        self._jobs.put((lambda _store: done.set(), None, None))
        return done.wait(timeout)

    def _run(self) -> None:
        try:
            store, report = open_store_with_recovery(self._path, read_only=self.read_only,
                                                     read_only_reason=READ_ONLY_MESSAGE)
        except StoreError as exc:
            self.failure = f"{exc} Conversations cannot be saved or shown until this is fixed."
            self._deliver.emit(self.error.emit, self.failure)
            return
        if report is not None:
            self._deliver.emit(self.notice.emit, report.message)
        self.available = True
        self._deliver.emit(lambda _none: self.opened.emit(), None)
        while True:
            item = self._jobs.get()
            if item is None:
                break
            job, on_done, on_error = item
            try:
                result = job(store)
            except Exception as exc:  # a failed write must reach the person, not vanish
                if not isinstance(exc, (sqlite3.OperationalError, StoreError)):
                    traceback.print_exc()
                self._deliver.emit(self._failed(on_error), describe_failure(exc))
                continue
            if on_done is not None:
                self._deliver.emit(on_done, result)
        store.close()

    def _failed(self, on_error: Failed | None) -> Done:
        def report(message: str) -> None:
            if on_error is not None:
                on_error(message)
            self.error.emit(message)
        return report

    @Slot(object, object)
    def _on_deliver(self, callback: Done, result: Any) -> None:
        callback(result)


def describe_failure(exc: Exception) -> str:
    """A person-readable sentence for a failed database job."""
    text = str(exc)
    if isinstance(exc, StoreError):  # already written for a person (read-only window, ...)
        return text
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return ("The conversation database is damaged. Restart Cove: it keeps a copy of the damaged file "
                "and recovers what it can.")
    if "full" in text.lower() or getattr(exc, "errno", None) == 28:
        return ("The disk is full: Cove could not save to the conversation database. Free some space; "
                "nothing already saved was lost, and your unsent message was kept.")
    return f"Saving or reading conversations failed: {text}"
