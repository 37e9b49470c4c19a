"""Requests waiting for the one model, served fairly, one at a time.

A :class:`Job` carries an API request and the events of its answer (pieces, then the end or an
error) to the HTTP thread that waits on it. :class:`FairQueue` takes jobs round-robin across
clients, so one client's burst cannot starve another, and refuses new ones (429) when
``limit`` are already waiting. :class:`Dispatcher` is the thread that hands each job in turn to an
executor (the headless host's model, or the window's generation thread) and waits for it to end.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from desktop.core.server.api_errors import ApiError, queue_full, server_error
from desktop.core.text.pieces import Piece

logger = logging.getLogger(__name__)

PIECE, DONE, ERROR = "piece", "done", "error"
_ids = itertools.count(1)


@dataclass
class Job:
    """One request on its way through the queue. ``events`` receives ``(PIECE, Piece)`` for each
    piece, then ``(DONE, stats dict)`` or ``(ERROR, ApiError)``; ``cancel`` stops it (a client that
    went away, a timeout)."""

    request: Any                         # ApiRequest, or ("embed", model, texts)
    client: str                          # who asked (address), for fairness and the status shown
    id: int = field(default_factory=lambda: next(_ids))
    cancel: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)
    created: float = field(default_factory=time.monotonic)
    started: float = 0.0
    ended: threading.Event = field(default_factory=threading.Event)

    def piece(self, piece: Piece) -> None:
        """Pass one streamed piece to the waiting HTTP thread."""
        self.events.put((PIECE, piece))

    def finish(self, stats: dict[str, Any]) -> None:
        """The answer ended (``stats``: GenerationStats.to_dict(), and ``model``)."""
        self.events.put((DONE, stats))
        self.ended.set()

    def fail(self, error: ApiError) -> None:
        """The request failed; the HTTP thread answers with ``error``."""
        self.events.put((ERROR, error))
        self.ended.set()


class FairQueue:
    """Waiting jobs, taken round-robin across clients; at most ``limit`` wait at once."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._by_client: OrderedDict[str, deque[Job]] = OrderedDict()
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: Job) -> None:
        """Queue ``job``, or raise a 429 :class:`ApiError` when the queue is full."""
        with self._cond:
            if self._count >= self.limit:
                raise queue_full(self.limit)
            self._by_client.setdefault(job.client, deque()).append(job)
            self._count += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job (the next client's oldest), waiting up to ``timeout``; None when closed or
        none came. Jobs cancelled while waiting are dropped here."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._closed:
                while self._by_client:
                    client, jobs = next(iter(self._by_client.items()))
                    job = jobs.popleft()
                    self._count -= 1
                    del self._by_client[client]
                    if jobs:  # the client goes to the back of the line
                        self._by_client[client] = jobs
                    if not job.cancel.is_set():
                        return job
                    job.fail(ApiError(499, "The client went away before its turn.", code="cancelled"))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return None

    def waiting(self) -> int:
        """How many jobs wait."""
        with self._cond:
            return self._count

    def close(self) -> None:
        """Wake the taker and refuse nothing more (the server is stopping)."""
        with self._cond:
            self._closed = True
            pending = [job for jobs in self._by_client.values() for job in jobs]
            self._by_client.clear()
            self._count = 0
            self._cond.notify_all()
        for job in pending:
            job.fail(ApiError(503, "The server is stopping.", type_="server_error", code="stopping"))


Executor = Callable[[Job], None]  # runs a job to its end (finish or fail), on the model's thread


class Dispatcher:
    """The thread that hands queued jobs, one at a time, to ``execute`` and waits for each to end.
    ``on_activity(job, running)`` is told when a job starts and ends (the window's status)."""

    def __init__(self, jobs: FairQueue, execute: Executor,
                 on_activity: Callable[[Job, bool], None] | None = None) -> None:
        self._jobs, self._execute, self._on_activity = jobs, execute, on_activity
        self._thread = threading.Thread(target=self._run, name="cove-api-dispatch", daemon=True)
        self.current: Job | None = None

    def start(self) -> None:
        """Start taking jobs."""
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.take()
            if job is None:
                return
            job.started = time.monotonic()
            self.current = job
            self._tell(job, True)
            try:
                self._execute(job)
            except Exception as exc:
                logger.exception("an API request failed")
                job.fail(server_error(f"Generation failed unexpectedly: {exc}"))
            finally:
                job.ended.wait()
                self.current = None
                self._tell(job, False)

    def _tell(self, job: Job, running: bool) -> None:
        if self._on_activity is not None:
            try:
                self._on_activity(job, running)
            except Exception:
                logger.exception("the API activity listener failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Close the queue, cancel the running job and end the thread (bounded wait)."""
        self._jobs.close()
        current = self.current
        if current is not None:
            current.cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
