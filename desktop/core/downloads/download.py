"""Download one file from the Hub into the models folder: resumable, checked, verified.

The bytes go to ``<models_dir>/.partial/<key>.part`` (never a ``*.gguf`` name, so the library never
lists it) next to a JSON sidecar ``<key>.json`` holding what the partial belongs to (repository,
file, revision, URL, size, sha256, ETag). A later run, also in a new process after a kill, rehashes
the partial's bytes and asks only for the rest (``Range`` with ``If-Range: <ETag>``); a server that
answers with the whole file (Range ignored, or the ETag changed) restarts the partial from zero, so
two versions are never spliced. The finished file is checked against the sha256 the Hub publishes
and only then moved atomically to ``<models_dir>/<owner>/<repo>/<filename>``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from desktop.core.downloads.progress import ProgressCallback, ProgressMeter
from desktop.core.downloads.sink import ChunkSink
from desktop.core.hub.client import HubClient, HubError, RangeResponse, RemoteFile
from desktop.core.models.names import safe_relative_path
from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.text.units import format_size

CHUNK = 1 << 20             # bytes handed to the writer thread at a time
RECEIVE: Any = None         # iter_chunks(None): pieces as they arrive (httpx's re-chunking is slow)
DISK_MARGIN = 64 << 20      # free space kept beyond the bytes still to come
MAX_FAILED_ATTEMPTS = 4     # connection attempts in a row that bring no new byte
RETRY_DELAY_S = 1.0         # doubled after each failed attempt
RETRYABLE = ("offline", "server", "bad_response")
PARTIAL_DIR = ".partial"

Opener = Callable[[Path, str], IO[bytes]]


class DownloadError(Exception):
    """A download that cannot go on; ``str(error)`` is one clear sentence for the person.

    ``kind``: a HubError kind ("offline", "auth", "not_found", "rate_limited", "server",
    "bad_response") or "bad_name", "no_space", "disk_full", "verify", "changed", "no_sha256".
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class DownloadCancelled(Exception):
    """The download was cancelled; its partial file is deleted."""


class DownloadPaused(Exception):
    """The download was paused; its partial file is kept for a later resume."""


def target_path(models_dir: Path, file: RemoteFile) -> Path:
    """Where ``file`` goes once verified; DownloadError("bad_name") for a hostile repo or file name."""
    owner, _, name = file.repo_id.partition("/")
    try:
        if not owner or not name or "/" in name:
            raise ValueError(file.repo_id)
        for part in (owner, name):
            if part.startswith(".") or len(safe_relative_path(part).parts) != 1:
                raise ValueError(part)
        relative = safe_relative_path(file.filename)
    except ValueError:
        raise DownloadError(f"Cove refused the file name {file.repo_id}/{file.filename!r}: it would be "
                            "written outside the models folder", "bad_name") from None
    root = Path(models_dir).resolve()
    target = (root / owner / name / Path(*relative.parts)).resolve()
    if not target.is_relative_to(root) or target == root:
        raise DownloadError(f"Cove refused the file name {file.filename!r}: it would be written outside "
                            "the models folder", "bad_name")
    return target


def partial_paths(models_dir: Path, file: RemoteFile) -> tuple[Path, Path]:
    """The partial data file and its JSON sidecar for ``file``."""
    key = hashlib.sha256(f"{file.repo_id}\n{file.filename}".encode()).hexdigest()[:32]
    folder = Path(models_dir) / PARTIAL_DIR
    return folder / f"{key}.part", folder / f"{key}.json"


def partial_size(models_dir: Path, file: RemoteFile) -> int:
    """Bytes of ``file`` already kept in its partial (0 when none or when it belongs elsewhere)."""
    data, sidecar = partial_paths(models_dir, file)
    if not _sidecar_matches(read_json(sidecar, None), file):
        return 0
    try:
        return min(data.stat().st_size, file.size)
    except OSError:
        return 0


def discard_partial(models_dir: Path, file: RemoteFile) -> None:
    """Delete the partial data file and sidecar of ``file`` (missing ones are fine)."""
    for path in partial_paths(models_dir, file):
        path.unlink(missing_ok=True)


def _sidecar_matches(meta: Any, file: RemoteFile) -> bool:
    if not isinstance(meta, dict):
        return False
    return all(meta.get(k) == getattr(file, k) for k in ("repo_id", "filename", "size", "sha256"))


def _sha256_of(path: Path, stop: Callable[[], None]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK * 4):
            stop()
            digest.update(block)
    return digest.hexdigest()


class Download:
    """One file from the Hub into ``models_dir``; :meth:`run` does the work on the calling thread.

    ``on_progress(done, total, bytes_per_s, eta_s)`` is called at most ~10 times a second on that
    thread (``eta_s`` is None until a speed is known); ``on_phase(text)`` when the work changes
    ("checking", "downloading", "verifying"). ``cancel``/``pause`` events are checked per chunk
    (also given to run/fetch). ``opener`` opens the partial for writing (tests pass one whose disk
    fills up).
    """

    def __init__(self, client: HubClient, file: RemoteFile, models_dir: Path,
                 on_progress: ProgressCallback | None = None, *,
                 on_phase: Callable[[str], None] | None = None, opener: Opener | None = None,
                 retry_delay: float = RETRY_DELAY_S, disk_margin: int = DISK_MARGIN,
                 cancel: threading.Event | None = None, pause: threading.Event | None = None) -> None:
        self.client = client
        self.file = file
        self.models_dir = Path(models_dir)
        self.target = target_path(self.models_dir, file)
        self.partial, self.sidecar = partial_paths(self.models_dir, file)
        self._meter = ProgressMeter(file.size, on_progress)
        self._on_phase = on_phase or (lambda _text: None)
        self._open: Opener = opener or (lambda path, mode: open(path, mode, buffering=0))  # noqa: SIM115
        self._retry_delay = retry_delay
        self._disk_margin = disk_margin
        self._cancel = cancel or threading.Event()
        self._pause = pause or threading.Event()
        self.restarts = 0   # times the partial was thrown away for a whole-file answer
        self._have, self._etag, self._digest = 0, "", hashlib.sha256()

    def run(self, cancel: threading.Event | None = None, pause: threading.Event | None = None) -> Path:
        """Download, verify and place the file; returns its final path. A verified copy already in
        place is kept as it is."""
        if self.in_place(cancel, pause):
            return self.target
        self.fetch()
        return self.place()

    def in_place(self, cancel: threading.Event | None = None, pause: threading.Event | None = None) -> bool:
        """True when the final file already exists with the published size and sha256."""
        self._use_flags(cancel, pause)
        try:
            if not self.file.sha256 or self.target.stat().st_size != self.file.size:
                return False
        except OSError:
            return False
        self._on_phase("verifying")
        return _sha256_of(self.target, self._check_flags) == self.file.sha256.lower()

    def fetch(self, cancel: threading.Event | None = None, pause: threading.Event | None = None) -> Path:
        """Download and verify into the partial (not yet placed); returns the partial's path.

        Raises DownloadError, DownloadCancelled (partial deleted) or DownloadPaused (partial kept).
        """
        self._use_flags(cancel, pause)
        if not self.file.sha256:
            raise DownloadError(f"The Hub publishes no SHA-256 for {self.file.filename}, so Cove cannot "
                                "verify it and will not download it", "no_sha256")
        self._on_phase("checking")
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._resume()
            self._transfer()
        except DownloadCancelled:
            discard_partial(self.models_dir, self.file)
            raise
        except DownloadError:
            if not partial_size(self.models_dir, self.file):
                discard_partial(self.models_dir, self.file)   # nothing came: leave nothing behind
            raise
        self._meter.finish()
        self._on_phase("verifying")
        if self._digest.hexdigest() != self.file.sha256.lower():
            discard_partial(self.models_dir, self.file)
            raise DownloadError(f"{self.file.filename} failed verification: its bytes do not match the "
                                "SHA-256 the Hub publishes, so the download was deleted", "verify")
        return self.partial

    def _resume(self) -> None:
        """Take up the partial if it belongs to this file (rehashing its bytes), else start afresh."""
        meta = read_json(self.sidecar, None)
        if not _sidecar_matches(meta, self.file) or not self.partial.is_file() \
                or self.partial.stat().st_size > self.file.size:
            discard_partial(self.models_dir, self.file)
            meta = None
        self._etag = str(meta.get("etag", "")) if meta else ""
        self._have = self.partial.stat().st_size if meta else 0
        self._check_space()
        self._digest = hashlib.sha256()
        if self._have:
            self._on_phase("verifying")
            with self.partial.open("rb") as handle:
                while block := handle.read(CHUNK * 4):
                    self._check_flags()
                    self._digest.update(block)
        self._on_phase("downloading")
        self._meter.start(self._have)

    def place(self) -> Path:
        """Move the verified partial to its final place (atomic rename) and forget the sidecar."""
        self.target.parent.mkdir(parents=True, exist_ok=True)
        with self.partial.open("r+b") as handle:
            os.fsync(handle.fileno())   # the bytes are on disk before the name says "ready"
        try:
            os.replace(self.partial, self.target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            staged = self.target.with_name(self.target.name + ".cove-part")
            shutil.copyfile(self.partial, staged)
            os.replace(staged, self.target)
            self.partial.unlink()
        self.sidecar.unlink(missing_ok=True)
        return self.target

    def _use_flags(self, cancel: threading.Event | None, pause: threading.Event | None) -> None:
        self._cancel = cancel or self._cancel
        self._pause = pause or self._pause

    def _check_flags(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled(self.file.filename)
        if self._pause.is_set():
            raise DownloadPaused(self.file.filename)

    def _save_sidecar(self, etag: str) -> None:
        f = self.file
        try:
            write_json_atomic(self.sidecar, {
                "repo_id": f.repo_id, "filename": f.filename, "revision": f.revision, "url": f.url,
                "size": f.size, "sha256": f.sha256, "etag": etag, "started": time.time()})
        except OSError as exc:
            raise self._disk_error(exc) from None

    def _disk_error(self, exc: OSError) -> Exception:
        """A clear DownloadError for a full disk; other OSErrors as they are."""
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return exc
        size = self.partial.stat().st_size if self.partial.exists() else 0
        return DownloadError(f"The disk is full: {self.file.filename} stopped at {format_size(size)}; the "
                             "partial download is kept, free some space and resume", "disk_full")

    def _check_space(self) -> None:
        free = shutil.disk_usage(self.partial.parent).free
        needed = self.file.size - self._have + self._disk_margin
        if free < needed:
            raise DownloadError(f"Not enough free disk space for {self.file.filename}: it needs "
                                f"{format_size(needed)} more and {self.models_dir} has {format_size(free)} free",
                                "no_space")

    def _transfer(self) -> None:
        """Fetch bytes until the partial is whole, retrying failed connections a bounded number of
        times (attempts in a row that bring no new byte)."""
        failures = 0
        while self._have < self.file.size:
            self._check_flags()
            self._check_space()
            before, restarts = self._have, self.restarts
            try:
                self._attempt()
                error: HubError | None = None
            except HubError as exc:
                if exc.kind not in RETRYABLE:
                    raise DownloadError(str(exc), exc.kind) from None
                error = exc
            if self._have >= self.file.size:
                return
            failures = 0 if self._have > before or self.restarts > restarts else failures + 1
            if failures >= MAX_FAILED_ATTEMPTS:
                reason = str(error) if error else f"The Hub kept closing the connection for {self.file.filename}."
                raise DownloadError(f"{reason} The download stopped at {format_size(self._have)} of "
                                    f"{format_size(self.file.size)}; it is kept and can resume",
                                    error.kind if error else "offline")
            if failures:
                self._wait(self._retry_delay * 2 ** (failures - 1))

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_flags()
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    def _attempt(self) -> None:
        """One request from the partial's end onwards, appending to it until the body ends."""
        with self.client.open_range(self.file, self._have, if_range=self._etag if self._have else "") as response:
            if response.total != self.file.size:
                raise DownloadError(f"{self.file.filename} changed on the Hub since it was listed "
                                    f"({format_size(response.total)} now, {format_size(self.file.size)} "
                                    "listed); look the repository up again", "changed")
            if self._have and response.start == 0:
                self._restart(response.etag)   # Range ignored or ETag changed: the whole file again
            elif self._have and self._etag and response.etag and response.etag != self._etag:
                self._restart(response.etag)   # If-Range ignored: drop the old bytes, ask again
                return
            elif response.start != self._have:
                raise HubError(f"The Hub answered from byte {response.start} instead of {self._have}",
                               kind="bad_response", status=response.status)
            if response.etag != self._etag or not self._have:
                self._etag = response.etag
                self._save_sidecar(self._etag)
            self._receive(response)

    def _receive(self, response: RangeResponse) -> None:
        """Append the body to the partial; writing and hashing run on a helper thread."""
        with self._open(self.partial, "r+b" if self._have else "wb") as out:
            out.seek(self._have)
            sink, start, received = ChunkSink(out, self._digest, self._write), self._have, 0
            pieces: list[bytes] = []
            pending = 0
            try:
                for piece in response.iter_chunks(RECEIVE):
                    self._check_flags()
                    piece = piece[: self.file.size - start - received]
                    pieces.append(piece)
                    pending += len(piece)
                    received += len(piece)
                    done = start + received >= self.file.size
                    if pending >= CHUNK or done:
                        sink.put(b"".join(pieces) if len(pieces) > 1 else pieces[0])
                        pieces, pending = [], 0
                        self._meter.update(start + received)
                    if done:
                        break
            finally:
                if pieces:
                    sink.put(b"".join(pieces))   # what came before a cut is kept
                self._have = start + sink.finish()
                if sink.error is not None:
                    raise sink.error

    def _restart(self, etag: str) -> None:
        self.restarts += 1
        with self._open(self.partial, "wb"):
            pass
        self._have, self._digest, self._etag = 0, hashlib.sha256(), etag
        self._meter.start(0)

    def _write(self, out: IO[bytes], chunk: bytes) -> None:
        """Write all of ``chunk`` (unbuffered: a full disk fails here, not later at close)."""
        view = memoryview(chunk)
        try:
            while view:
                written = out.write(view)
                if written == 0:
                    raise OSError(errno.EIO, "nothing written")
                view = view[len(view) if written is None else written:]
        except OSError as exc:
            raise self._disk_error(exc) from None


def download_model(client: HubClient, files: Sequence[RemoteFile], models_dir: Path,
                   on_progress: ProgressCallback | None = None, *,
                   on_phase: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
                   pause: threading.Event | None = None, retry_delay: float = RETRY_DELAY_S) -> list[Path]:
    """Download every file of one model (the parts of a split model), verify each, then place them
    all, so a split model never appears half there. ``on_progress`` counts over all the files."""
    total = sum(f.size for f in files)
    pending: list[tuple[Download, bool]] = []
    before = 0
    for file in files:
        def report(done: int, _total: int, speed: float, _eta: float | None, before: int = before) -> None:
            whole = before + done
            if on_progress is not None:
                on_progress(whole, total, speed, (total - whole) / speed if speed > 0 else None)
        download = Download(client, file, models_dir, report, on_phase=on_phase, retry_delay=retry_delay,
                            cancel=cancel, pause=pause)
        ready = download.in_place()
        if not ready:
            download.fetch()
        pending.append((download, ready))
        before += file.size
    return [d.target if ready else d.place() for d, ready in pending]
