"""Advisory file locks that keep two Cove processes from stepping on each other's data.

Two locks live next to the conversation database (both are empty files; the lock, not the file,
is what counts, and the operating system drops it when a process ends, even by ``kill -9``):

* ``cove.sqlite3.lock`` - the **window lock**, exclusive, held by a Cove window for its whole
  life. A second window on the same data cannot take it and opens the database read-only
  (:data:`READ_ONLY_MESSAGE`). The command line does not take it: SQLite's own locking (WAL, one
  writer at a time, busy timeout) already makes its writes safe next to a window.
* ``cove.sqlite3.users`` - the **users lock**: every process using the database holds it
  *shared*; repairing a damaged database (moving files aside) needs it *exclusive*, i.e. nobody
  else has the file open. See :mod:`desktop.core.conversations.recovery`.

POSIX systems use ``fcntl.flock``. Windows uses ``msvcrt.locking``, which has no shared mode: there
a shared request takes no lock, and repair relies on Windows refusing to rename an open file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType

READ_ONLY_MESSAGE = ("Cove is already running with these conversations in another window; "
                     "this window is read-only. Close the other Cove window to chat here.")
_POLL_S = 0.05


def window_lock_path(database: Path) -> Path:
    """The window lock file of ``database``."""
    return database.with_name(database.name + ".lock")


def users_lock_path(database: Path) -> Path:
    """The users lock file of ``database``."""
    return database.with_name(database.name + ".users")


class FileLock:
    """An advisory lock on ``path`` (created if missing). Not reentrant; one holder per object.

    >>> lock = FileLock(window_lock_path(db))
    >>> if lock.acquire():        # exclusive, do not wait
    ...     ...                   # we are the only window
    >>> lock.release()
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.shared = False

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self, *, shared: bool = False, timeout_s: float = 0.0) -> bool:
        """Take the lock (exclusive unless ``shared``), waiting up to ``timeout_s``; True when held.

        Called while already held, it converts between shared and exclusive (not atomically:
        another process may take the lock in between, and then False is returned, the lock lost).
        """
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            if _try_lock(self._fd, shared):
                self.shared = shared
                return True
            if time.monotonic() >= deadline:
                self.release()
                return False
            time.sleep(_POLL_S)

    def release(self) -> None:
        """Drop the lock (safe to call when not held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)

    def __enter__(self) -> FileLock:
        if not self.acquire():
            raise BlockingIOError(f"{self.path} is locked by another process")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock must not outlive its object
        with contextlib.suppress(OSError):
            self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, shared: bool) -> bool:
        if shared:
            return True  # msvcrt has no shared locks; see the module docstring
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
