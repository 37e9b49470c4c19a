"""Blocking work (disk, network, keyring) off the GUI thread, with one failure contract.

Every service runs its blocking work through a :class:`Worker` (the generation thread, which
owns the one model, follows the same contract through :func:`log_failure`). Modelled on Anki's
``aqt/taskman.py``: a function runs on a worker thread, and its result or its exception is
handed to a callback on the GUI thread.

The contract, for every job:

* ``job()`` runs on the worker thread, after every job submitted before it.
* If it returns, ``on_done(result)`` runs later on the worker's owning (GUI) thread.
* If it raises, the exception is logged first (with its traceback, unless its type is one the
  worker was told to expect: an ordinary outcome a person is told about, logged in one line), then
  ``on_error(exc)`` runs on the GUI thread, or, when the caller gave none, the worker's
  ``report(exc)``. A failure is never dropped: every worker has a ``report``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

logger = logging.getLogger(__name__)

Job = Callable[[], Any]
Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]
Expected = tuple[type[BaseException], ...]


def log_failure(log: logging.Logger, what: str, exc: BaseException, expected: Expected = ()) -> None:
    """Log a failed job: one line for an ``expected`` failure, the full traceback for any other."""
    if isinstance(exc, expected):
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
    else:
        log.error("%s failed unexpectedly", what, exc_info=exc)


def job_name(job: Callable[..., Any]) -> str:
    """A short name of a job for the log (its qualified name, without ``<locals>``)."""
    name = getattr(job, "__qualname__", "") or type(job).__name__
    return name.replace(".<locals>", "")


class Worker(QObject):
    """One named daemon thread running submitted jobs in order (see the module's contract).

    ``report(exc)`` receives the failures of jobs submitted without an ``on_error``; ``expected``
    names the exception types that are ordinary outcomes (logged without a traceback). Callbacks
    run on the thread that owns this object, which must run a Qt event loop (the GUI thread).
    A job that should not outlive a newer request checks a generation number itself.
    """

    _deliver = Signal(object, object)

    def __init__(self, name: str, report: Failed, parent: QObject | None = None, *,
                 expected: Expected = ()) -> None:
        super().__init__(parent)
        self.name = name
        self._report = report
        self._expected = expected
        self._jobs: queue.Queue[tuple[Job, Done | None, Failed | None] | None] = queue.Queue()
        self._stopped = False
        self._deliver.connect(self._on_deliver)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job, on_done: Done | None = None, on_error: Failed | None = None) -> None:
        """Queue ``job``; never blocks, and may be called from any thread."""
        if self._stopped:
            logger.warning("%s: %s was submitted after the worker stopped; it does not run", self.name,
                           job_name(job))
            return
        self._jobs.put((job, on_done, on_error))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every job queued so far has run (tests and shutdown only); False on timeout."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread after the queued jobs (bounded wait: a job stuck on the network is left)."""
        if not self._stopped:
            self._stopped = True
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
            except Exception as exc:  # noqa: BLE001 - every failure goes to a callback, never into the void
                log_failure(logger, f"{self.name}: {job_name(job)}", exc, self._expected)
                self._emit(on_error or self._report, exc)
                continue
            if on_done is not None:
                self._emit(on_done, result)

    def _emit(self, callback: Callable[[Any], None], value: Any) -> None:
        try:
            self._deliver.emit(callback, value)
        except RuntimeError:  # the owner was deleted (the app is closing): nobody is left to tell
            logger.warning("%s: a result arrived after its owner was deleted", self.name)

    @Slot(object, object)
    def _on_deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        callback(value)
