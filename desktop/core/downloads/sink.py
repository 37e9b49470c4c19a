"""Writes and hashes a download's chunks on two helper threads, so the receiving thread only receives.

File writes and sha256 both release the GIL, so they overlap with each other and with the HTTP
parsing of the next chunk (sha256 at ~1 GB/s is the slowest step on a fast link: run serially with
the writes, it held a loopback download to ~0.7 of curl); short bounded queues keep memory use at a
few chunks. The digest only counts once the whole file was written: a partial file is rehashed from
disk when a download resumes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import IO, Any

DEPTH = 8   # chunks in flight at most


class ChunkSink:
    """Appends chunks to ``out`` with ``write(out, chunk)`` and feeds them to ``digest``.

    :meth:`put` re-raises a write error as soon as it is known; :meth:`finish` waits for every
    chunk and returns how many bytes were written and hashed (``error`` holds a failed write).
    """

    def __init__(self, out: IO[bytes], digest: Any, write: Callable[[IO[bytes], bytes], None],
                 depth: int = DEPTH) -> None:
        self.written = 0
        self.error: BaseException | None = None
        self._out = out
        self._digest = digest
        self._write = write
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._hash_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="cove-download-writer", daemon=True)
        self._hasher = threading.Thread(target=self._hash, name="cove-download-hasher", daemon=True)
        self._thread.start()
        self._hasher.start()

    def put(self, chunk: bytes) -> None:
        """Queue ``chunk`` (blocks while the queue is full)."""
        if self.error is not None:
            raise self.error
        self._queue.put(chunk)
        self._hash_queue.put(chunk)

    def finish(self) -> int:
        """Wait until everything queued is written and hashed (or a write failed); bytes written."""
        self._queue.put(None)
        self._hash_queue.put(None)
        self._thread.join()
        self._hasher.join()
        return self.written

    def _hash(self) -> None:
        while (chunk := self._hash_queue.get()) is not None:
            self._digest.update(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is not None:
                continue   # drain: the receiving thread sees the error at its next put
            try:
                self._write(self._out, chunk)
                self.written += len(chunk)
            except BaseException as exc:  # noqa: BLE001 - handed to the receiving thread
                self.error = exc
