"""A queue of downloads: one worker thread, first in first out, persisted across restarts.

An item is one model: one file, or every part of a split model. Its parts are fetched and verified
one after the other into the models folder's ``.partial`` folder, then all placed at once, so a
split model never shows up half there. The queue is written to ``state_file`` (JSON) at each change
of state; after a kill or a restart the unfinished items come back (paused, or queued with
``resume_unfinished=True``) and continue from their partial files.

Item states: ``queued``, ``downloading``, ``paused``, ``done``, ``failed``, ``cancelled`` (and
``removed``, sent once to the listener by :meth:`DownloadQueue.forget`).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop.core.downloads.download import (
    RETRY_DELAY_S,
    DownloadCancelled,
    DownloadError,
    DownloadPaused,
    discard_partial,
    download_model,
    partial_size,
)
from desktop.core.hub.client import HubClient, RemoteFile
from desktop.core.system.atomic import read_json, write_json_atomic

QUEUED, DOWNLOADING, PAUSED, DONE, FAILED, CANCELLED, REMOVED = (
    "queued", "downloading", "paused", "done", "failed", "cancelled", "removed")
UNFINISHED = (QUEUED, DOWNLOADING, PAUSED, FAILED)
STATE_VERSION = 1


@dataclass(frozen=True)
class QueueItem:
    """A snapshot of one queued model. ``done``/``total`` in bytes over all its files;
    ``phase`` while downloading: "checking", "downloading" or "verifying"; ``paths``: where the
    files are once ``done``; ``error``: one sentence once ``failed`` (``error_kind`` as in
    DownloadError.kind, e.g. "auth" when a token is needed)."""

    id: str
    label: str
    files: tuple[RemoteFile, ...]
    state: str = QUEUED
    done: int = 0
    total: int = 0
    bytes_per_s: float = 0.0
    eta_s: float | None = None
    phase: str = ""
    error: str = ""
    error_kind: str = ""
    paths: tuple[str, ...] = ()


@dataclass
class _Slot:
    item: QueueItem
    pause: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)


Listener = Callable[[QueueItem], None]


class DownloadQueue:
    """Downloads models one at a time on its own thread.

    ``listener(item)`` is called with a fresh :class:`QueueItem` after every change, in the order
    of the changes: from the worker thread for progress (~10 a second at most) and results, from
    the caller's thread for add/pause/resume/cancel/forget. It runs with the queue's lock held: it
    must not block or wait for another thread that uses the queue (calling the queue from it is
    fine); a Qt service re-emits it as a signal.
    ``client_factory()`` makes the HubClient for each item (so a token entered later is used).
    """

    def __init__(self, client_factory: Callable[[], HubClient], models_dir: Path, state_file: Path,
                 listener: Listener | None = None, *, resume_unfinished: bool = False,
                 retry_delay: float = RETRY_DELAY_S) -> None:
        self._client_factory = client_factory
        self.models_dir = Path(models_dir)
        self.state_file = Path(state_file)
        self._listener = listener
        self._retry_delay = retry_delay
        self._lock = threading.Condition()
        self._slots: dict[str, _Slot] = {}
        self._stopping = False
        self._load(resume_unfinished)
        self._thread = threading.Thread(target=self._work, name="cove-downloads", daemon=True)
        self._thread.start()

    # -- the caller's side -------------------------------------------------------------------
    def add(self, files: Sequence[RemoteFile], label: str = "") -> str:
        """Queue ``files`` (one model) and return the item's id. The same files already in the queue
        and unfinished give that item's id instead (queued again if it was paused or failed)."""
        files = tuple(files)
        if not files:
            raise ValueError("nothing to download")
        with self._lock:
            for slot in self._slots.values():
                if slot.item.state in UNFINISHED and _keys(slot.item.files) == _keys(files):
                    self.resume(slot.item.id)
                    return slot.item.id
            item = QueueItem(uuid.uuid4().hex[:12], label or files[0].filename, files, QUEUED,
                             self._kept(files), sum(f.size for f in files))
            slot = self._slots[item.id] = _Slot(item)
            self._set(slot)
            self._lock.notify_all()
        return item.id

    def pause(self, item_id: str) -> None:
        """Pause a queued or running item; its partial files are kept."""
        with self._lock:
            slot = self._slots[item_id]
            if slot.item.state == DOWNLOADING:
                slot.pause.set()   # the worker marks it paused when the download stops
                return
            if slot.item.state != QUEUED:
                return
            self._set(slot, state=PAUSED)

    def resume(self, item_id: str) -> None:
        """Queue a paused or failed item again; it continues from its partial files."""
        with self._lock:
            slot = self._slots[item_id]
            if slot.item.state not in (PAUSED, FAILED):
                return
            slot.pause.clear()
            self._set(slot, state=QUEUED, error="", error_kind="", done=self._kept(slot.item.files))
            self._lock.notify_all()

    def cancel(self, item_id: str) -> None:
        """Stop an item and delete its partial files."""
        with self._lock:
            slot = self._slots[item_id]
            if slot.item.state == DOWNLOADING:
                slot.cancel.set()
                return
            if slot.item.state not in UNFINISHED:
                return
            for file in slot.item.files:
                discard_partial(self.models_dir, file)
            self._set(slot, state=CANCELLED, done=0, bytes_per_s=0.0, eta_s=None)

    def forget(self, item_id: str) -> None:
        """Drop a finished, failed or cancelled item from the list (a failed one's partials go too)."""
        with self._lock:
            slot = self._slots.get(item_id)
            if slot is None or slot.item.state in (QUEUED, DOWNLOADING, PAUSED):
                return
            if slot.item.state == FAILED:
                for file in slot.item.files:
                    discard_partial(self.models_dir, file)
            del self._slots[item_id]
            self._save()
            self._tell(replace(slot.item, state=REMOVED))

    def items(self) -> list[QueueItem]:
        """Every item, oldest first."""
        with self._lock:
            return [slot.item for slot in self._slots.values()]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or downloading; False on timeout."""
        with self._lock:
            return self._lock.wait_for(
                lambda: not any(s.item.state in (QUEUED, DOWNLOADING) for s in self._slots.values()), timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker: a running download stops with its partial kept and is saved as
        unfinished, as after a kill."""
        with self._lock:
            self._stopping = True
            for slot in self._slots.values():
                slot.pause.set()
            self._lock.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the worker's side -------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._stopping or self._next() is not None)
                if self._stopping:
                    return
                slot = self._next()
                assert slot is not None
                slot.pause.clear()
                slot.cancel.clear()
                self._set(slot, state=DOWNLOADING, phase="checking")
            self._finish(slot, self._outcome(slot))

    def _next(self) -> _Slot | None:
        return next((s for s in self._slots.values() if s.item.state == QUEUED), None)

    def _outcome(self, slot: _Slot) -> dict[str, object]:
        """Run the item's downloads; the fields of its next state."""
        try:
            paths = self._download(slot)
        except DownloadPaused:
            return {"state": QUEUED if self._stopping else PAUSED, "done": self._kept(slot.item.files)}
        except DownloadCancelled:
            for file in slot.item.files:
                discard_partial(self.models_dir, file)
            return {"state": CANCELLED, "done": 0}
        except DownloadError as exc:
            return {"state": FAILED, "error": str(exc), "error_kind": exc.kind,
                    "done": self._kept(slot.item.files)}
        except Exception as exc:  # noqa: BLE001 - the queue must survive anything one item does
            return {"state": FAILED, "error": f"The download stopped: {exc}", "error_kind": "unexpected",
                    "done": self._kept(slot.item.files)}
        total = slot.item.total
        return {"state": DONE, "done": total, "paths": tuple(str(p) for p in paths)}

    def _finish(self, slot: _Slot, fields: dict[str, object]) -> None:
        with self._lock:
            self._set(slot, phase="", bytes_per_s=0.0, eta_s=None, **fields)
            self._lock.notify_all()

    def _download(self, slot: _Slot) -> list[Path]:
        return download_model(self._client_factory(), slot.item.files, self.models_dir,
                              self._progress_hook(slot), on_phase=self._phase_hook(slot),
                              cancel=slot.cancel, pause=slot.pause, retry_delay=self._retry_delay)

    def _progress_hook(self, slot: _Slot) -> Callable[[int, int, float, float | None], None]:
        def report(done: int, _total: int, speed: float, eta: float | None) -> None:
            with self._lock:
                self._set(slot, save=False, done=done, bytes_per_s=speed, eta_s=eta)
        return report

    def _phase_hook(self, slot: _Slot) -> Callable[[str], None]:
        def report(phase: str) -> None:
            with self._lock:
                self._set(slot, save=False, phase=phase)
        return report

    # -- shared helpers (call with the lock held) --------------------------------------------
    def _set(self, slot: _Slot, save: bool = True, **changes: object) -> QueueItem:
        """Change an item, persist it (unless ``save`` is False: progress) and tell the listener,
        all under the lock, so the listener sees the changes in the order they happened."""
        slot.item = replace(slot.item, **changes)  # type: ignore[arg-type]
        if save:
            self._save()
        self._tell(slot.item)
        return slot.item

    def _kept(self, files: Sequence[RemoteFile]) -> int:
        return sum(partial_size(self.models_dir, f) for f in files)

    def _tell(self, item: QueueItem) -> None:
        if self._listener is not None:
            self._listener(item)

    def _save(self) -> None:
        rows = [{"id": s.item.id, "label": s.item.label, "state": s.item.state, "error": s.item.error,
                 "error_kind": s.item.error_kind, "files": [dataclasses.asdict(f) for f in s.item.files]}
                for s in self._slots.values() if s.item.state in UNFINISHED]
        write_json_atomic(self.state_file, {"version": STATE_VERSION, "items": rows})

    def _load(self, resume_unfinished: bool) -> None:
        data = read_json(self.state_file, {})
        rows = data.get("items", []) if isinstance(data, dict) else []
        names = {f.name for f in dataclasses.fields(RemoteFile)}
        for row in rows:
            try:
                files = tuple(RemoteFile(**{k: v for k, v in f.items() if k in names}) for f in row["files"])
                state = row["state"] if row["state"] in (PAUSED, FAILED) else (
                    QUEUED if resume_unfinished else PAUSED)
                item = QueueItem(str(row["id"]), str(row["label"]), files, state, self._kept(files),
                                 sum(f.size for f in files), error=str(row.get("error", "")),
                                 error_kind=str(row.get("error_kind", "")))
            except (KeyError, TypeError, AttributeError):
                continue   # a damaged row is dropped, the others come back
            self._slots[item.id] = _Slot(item)


def _keys(files: Sequence[RemoteFile]) -> tuple[tuple[str, str], ...]:
    return tuple((f.repo_id, f.filename) for f in files)
