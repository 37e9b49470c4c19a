"""The conversation store on a thread of its own; results come back on the GUI thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.conversations.records import StoreError
from desktop.core.conversations.recovery import open_store_with_recovery
from desktop.core.conversations.store import Store
from desktop.core.system.locks import READ_ONLY_MESSAGE
from desktop.services.background import Done, Failed, Worker, job_name

Job = Callable[[Store], Any]
# Failures that are part of normal operation (a read-only window, a locked or full disk): the
# person is told; the log gets one line.
EXPECTED = (sqlite3.OperationalError, StoreError)


class StoreService(QObject):
    """Owns the one :class:`Store` connection on a worker thread.

    ``submit(job, on_done, on_error)`` may be called from any thread; ``job(store)`` runs on the
    store thread in submission order, with the failure contract of :mod:`desktop.services.background`:
    ``on_done(result)`` or ``on_error(exception)`` runs later on the GUI thread, and every failure
    is also emitted as ``error`` with a sentence for a person (:func:`describe_failure`).

    The database is opened with :func:`open_store_with_recovery` when :meth:`start` is called: a
    damaged file is set aside and what can be read is recovered (``notice`` says so).
    ``read_only=True`` (another Cove window owns the data) opens it read-only; every write then
    fails with a message saying why.

    Signals:
        error(str): a job failed; the message is for a person.
        opened(): the database is open and migrated.
        notice(str): something the person should know about the database (it was recovered).
    """

    error = Signal(str)
    opened = Signal()
    notice = Signal(str)

    def __init__(self, path: Path, parent: QObject | None = None, *, read_only: bool = False) -> None:
        super().__init__(parent)
        self._path = path
        self.read_only = read_only
        self._store: Store | None = None  # used on the store thread only
        self._worker = Worker("cove-store", self._failed(None), self, expected=EXPECTED)
        self.available = False
        self.failure = ""  # why the database could not be opened, for a person

    def start(self) -> None:
        """Open the database on the store thread (jobs submitted earlier fail: call this first)."""
        self._worker.submit(self._open, self._on_opened)

    def submit(self, job: Job, on_done: Done | None = None, on_error: Failed | None = None) -> None:
        """Queue ``job``; never blocks. With no database the job fails, reported as any failure."""
        def run() -> Any:
            return job(self._open_store())
        run.__qualname__ = job_name(job)  # the log names the caller's job, not this wrapper
        self._worker.submit(run, on_done, self._failed(on_error))

    def update_message(self, message_id: int, content: str, status: str | None, stats: dict | None,
                       reasoning: str | None = None) -> None:
        """Queue a write of a message's text (and reasoning, status and figures); thread-safe. The
        figures' ``tool_calls`` (the calls the answer wrote) are stored as the message's calls."""
        thinking_s = (stats or {}).get("thinking_s")
        calls = (stats or {}).get("tool_calls") or None
        if stats is not None and "tool_calls" in stats:
            stats = {k: v for k, v in stats.items() if k != "tool_calls"}
        self.submit(lambda store: store.update_message(message_id, content, status=status, stats=stats,
                                                       reasoning=reasoning, thinking_s=thinking_s,
                                                       tool_calls=calls))

    def stop(self, timeout: float = 5.0) -> None:
        """Finish queued jobs, close the database and end the thread (bounded wait)."""
        self._worker.submit(self._close)
        self._worker.stop(timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every job queued so far has run (tests and shutdown only)."""
        return self._worker.wait_idle(timeout)

    # -- the store thread ---------------------------------------------------------------------
    def _open(self) -> str:
        """Open the database; the recovery notice ("" for none) goes to :meth:`_on_opened`."""
        try:
            store, report = open_store_with_recovery(self._path, read_only=self.read_only,
                                                     read_only_reason=READ_ONLY_MESSAGE)
        except StoreError as exc:
            self.failure = f"{exc} Conversations cannot be saved or shown until this is fixed."
            raise StoreError(self.failure) from exc
        self._store = store
        self.available = True
        return report.message if report is not None else ""

    def _open_store(self) -> Store:
        if self._store is None:
            raise StoreError(self.failure or "The conversation database is not open.")
        return self._store

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the GUI thread ------------------------------------------------------------------------
    def _on_opened(self, notice: str) -> None:
        if notice:
            self.notice.emit(notice)
        self.opened.emit()

    def _failed(self, on_error: Failed | None) -> Failed:
        def report(exc: BaseException) -> None:
            if on_error is not None:
                on_error(exc)
            self.error.emit(describe_failure(exc))
        return report


def describe_failure(exc: BaseException) -> str:
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
