"""One file from the fake Hub (real SmolLM2 bytes, real huggingface_hub code) into the models folder:
resume, restarts, verification, bad input. Byte ranges are asserted from the fake Hub's log."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from desktop.core.downloads.download import (
    Download,
    DownloadCancelled,
    DownloadError,
    DownloadPaused,
    partial_paths,
    partial_size,
)
from desktop.core.downloads.progress import ProgressMeter
from desktop.core.hub.client import HubClient, RemoteFile
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.paths import app_paths
from tests.helpers.fakehub import HOSTILE_NAMES, SMOL_FILE, SMOL_REPO

MB = 1 << 20


@pytest.fixture
def client(fake_hub) -> HubClient:
    client = HubClient(endpoint=fake_hub.url)
    client.fake_hub = fake_hub  # type: ignore[attr-defined] - for partial_to
    return client


@pytest.fixture
def smol(client: HubClient) -> RemoteFile:
    [file] = [f for f in client.repo(SMOL_REPO).files if f.filename == SMOL_FILE]
    return file


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return app_paths(tmp_path / "cove").ensure().models_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ggufs(models: Path) -> list[Path]:
    """What the library would list from the models folder."""
    return sorted(p for p in models.rglob("*") if p.suffix.lower() == ".gguf")


def pause_at(nbytes: int) -> tuple[threading.Event, callable]:
    """A pause event and a progress callback that sets it once ``nbytes`` are done."""
    event = threading.Event()

    def progress(done: int, _total: int, _speed: float, _eta: float | None) -> None:
        if done >= nbytes:
            event.set()
    return event, progress


def partial_to(client: HubClient, smol: RemoteFile, models: Path, nbytes: int) -> int:
    """Leave a paused partial of at least ``nbytes`` (the first GET slowed to 40 MB/s so the pause
    lands well before the end); returns its size."""
    fake_hub = client.fake_hub  # type: ignore[attr-defined]
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=40 * MB, times=1)
    pause, progress = pause_at(nbytes)
    with pytest.raises(DownloadPaused):
        Download(client, smol, models, progress).run(pause=pause)
    return partial_size(models, smol)


def test_download_places_the_verified_file_and_reports_throttled_progress(client, smol, models, fake_hub, starter_model):
    calls: list[tuple[int, int, float, float | None, float]] = []
    phases: list[str] = []
    began = time.monotonic()
    path = Download(client, smol, models, lambda *a: calls.append((*a, time.monotonic())),
                    on_phase=phases.append).run()
    elapsed = time.monotonic() - began
    assert path == models / SMOL_REPO / SMOL_FILE
    assert sha256(path) == sha256(starter_model) == smol.sha256
    assert ggufs(models) == [path]
    assert not any((models / ".partial").iterdir())
    assert calls[-1][:2] == (smol.size, smol.size)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert len(calls) <= elapsed * 10 + 3   # ~10 reports a second at most
    assert phases[0] == "checking" and "downloading" in phases and phases[-1] == "verifying"
    assert fake_hub.served_ranges(SMOL_FILE) == [(0, smol.size)]


def test_a_second_run_finds_the_verified_file_and_asks_for_nothing(client, smol, models, fake_hub):
    first = Download(client, smol, models).run()
    count = len(fake_hub.requests)
    assert Download(client, smol, models).run() == first
    assert len(fake_hub.requests) == count


def test_pause_keeps_the_partial_and_resume_continues_from_its_size(client, smol, models, fake_hub, starter_model):
    kept = partial_to(client, smol, models, 30 * MB)
    assert 30 * MB <= kept < smol.size
    data, sidecar = partial_paths(models, smol)
    assert data.suffix == ".part" and sidecar.is_file() and not ggufs(models)
    listed = ModelLibrary(app_paths(models.parent.parent)).entries()
    assert not any(".partial" in e.path.parts for e in listed)
    path = Download(HubClient(endpoint=fake_hub.url), smol, models).run()   # a fresh client, as after a restart
    assert sha256(path) == sha256(starter_model)
    ranges = fake_hub.served_ranges(SMOL_FILE)
    assert ranges[0][0] == 0 and ranges[1:] == [(kept, smol.size)]
    headers = fake_hub.request_headers[-1]
    assert headers["Range"] == f"bytes={kept}-" and headers["If-Range"] == f'"{smol.sha256}"'


def test_a_cut_connection_is_resumed_where_it_stopped(client, smol, models, fake_hub, starter_model):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, cut_at=7 * MB, times=2)
    path = Download(client, smol, models, retry_delay=0.01).run()
    assert sha256(path) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE) == [(0, 7 * MB), (7 * MB, 14 * MB), (14 * MB, smol.size)]


def test_a_connection_that_keeps_failing_ends_with_a_clear_message_and_keeps_the_partial(client, smol, models, fake_hub):
    kept = partial_to(client, smol, models, 5 * MB)
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, cut_at=0)
    with pytest.raises(DownloadError) as caught:
        Download(client, smol, models, retry_delay=0.01).run()
    assert "kept" in str(caught.value) and "resume" in str(caught.value)
    assert partial_size(models, smol) == kept and not ggufs(models)


def test_a_server_that_ignores_range_restarts_from_zero(client, smol, models, fake_hub, starter_model):
    kept = partial_to(client, smol, models, 20 * MB)
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, ignore_range=True)
    download = Download(client, smol, models)
    path = download.run()
    assert download.restarts == 1
    assert sha256(path) == sha256(starter_model)
    last = fake_hub.requests[-1]
    assert last.range == f"bytes={kept}-" and last.status == 200 and last.sent == smol.size


def test_a_changed_etag_restarts_from_zero_and_never_splices(client, smol, models, fake_hub, starter_model):
    kept = partial_to(client, smol, models, 20 * MB)
    other = bytearray(starter_model.read_bytes())
    other[smol.size - 10] ^= 0xFF      # same length, one byte different, new ETag
    new_etag = fake_hub.replace_file(SMOL_REPO, SMOL_FILE, bytes(other))
    download = Download(client, smol, models)   # the old listing: the old sha256
    with pytest.raises(DownloadError) as caught:
        download.run()
    assert caught.value.kind == "verify" and "failed verification" in str(caught.value)
    assert download.restarts == 1
    assert fake_hub.request_headers[-1]["If-Range"] == f'"{smol.sha256}"' != new_etag
    assert fake_hub.requests[-1].status == 200 and fake_hub.requests[-1].sent == smol.size
    assert kept and not ggufs(models) and partial_size(models, smol) == 0
    fresh = HubClient(endpoint=fake_hub.url).repo(SMOL_REPO).files[0]   # looked up again: the new file
    assert sha256(Download(client, fresh, models).run()) == fresh.sha256 == hashlib.sha256(other).hexdigest()


def test_a_flipped_byte_fails_verification_and_nothing_is_placed(client, smol, models, fake_hub):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, flip_byte=smol.size // 2)
    with pytest.raises(DownloadError) as caught:
        Download(client, smol, models).run()
    assert caught.value.kind == "verify"
    assert "SHA-256" in str(caught.value) and "deleted" in str(caught.value)
    assert not ggufs(models) and not any((models / ".partial").iterdir())


@pytest.mark.parametrize("status, kind, words", [
    (401, "auth", "token"), (403, "auth", "token"), (404, "not_found", "not"),
    (429, "rate_limited", "try again"), (500, "server", "Hub"),
])
def test_http_errors_give_their_message_and_leave_nothing(client, smol, models, fake_hub, status, kind, words):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, status=status)
    with pytest.raises(DownloadError) as caught:
        Download(client, smol, models, retry_delay=0.01).run()
    assert caught.value.kind == kind
    assert words.lower() in str(caught.value).lower()
    assert not ggufs(models) and not any((models / ".partial").iterdir())


class FullDisk:
    """A partial file on a disk that fills up after ``room`` bytes: short write, then ENOSPC."""

    def __init__(self, path: Path, mode: str, room: int) -> None:
        self._file = open(path, mode, buffering=0)  # noqa: SIM115
        self._room = room

    def write(self, data: memoryview) -> int:
        if self._file.tell() >= self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._file.write(data[: self._room - self._file.tell()])

    def __getattr__(self, name: str):
        return getattr(self._file, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def test_a_full_disk_keeps_the_partial_with_a_clear_message_and_resumes(client, smol, models, fake_hub, starter_model):
    room = 9 * MB + 12345
    download = Download(client, smol, models, opener=lambda path, mode: FullDisk(path, mode, room))
    with pytest.raises(DownloadError) as caught:
        download.run()
    assert caught.value.kind == "disk_full" and "disk is full" in str(caught.value)
    assert "kept" in str(caught.value)
    assert partial_size(models, smol) == room and not ggufs(models)
    path = Download(client, smol, models).run()
    assert sha256(path) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (room, smol.size)


def test_too_little_free_space_is_said_before_anything_is_asked(client, smol, models, fake_hub):
    count = len(fake_hub.requests)
    with pytest.raises(DownloadError) as caught:
        Download(client, smol, models, disk_margin=1 << 60).run()
    assert caught.value.kind == "no_space" and "Not enough free disk space" in str(caught.value)
    assert len(fake_hub.requests) == count and not ggufs(models)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_names_are_refused_before_anything_is_written(client, smol, models, fake_hub, tmp_path, name):
    fake_hub.add_repo("evil/repo", {name: b"GGUF" + bytes(100), "fine.gguf": b"GGUF" + bytes(100)})
    details = client.repo("evil/repo")
    assert [f.filename for f in details.files] == ["fine.gguf"] and name in details.rejected
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DownloadError) as caught:
        Download(client, dataclasses.replace(details.files[0], filename=name), models).run()
    assert caught.value.kind == "bad_name" and "outside the models folder" in str(caught.value)
    assert sorted(tmp_path.rglob("*")) == before
    assert not any(r.path.endswith("x.gguf") for r in fake_hub.requests)


@pytest.mark.parametrize("repo_id", ["../evil", "evil/../..", "/etc", "a/b/c", ".hidden/x", "a\\b/c", "evil"])
def test_hostile_repository_names_are_refused(smol, models, client, repo_id):
    with pytest.raises(DownloadError) as caught:
        Download(client, dataclasses.replace(smol, repo_id=repo_id), models)
    assert caught.value.kind == "bad_name"


def test_cancel_deletes_the_partial(client, smol, models, fake_hub):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=40 * MB)
    cancel, progress = pause_at(10 * MB)
    with pytest.raises(DownloadCancelled):
        Download(client, smol, models, progress).run(cancel=cancel)
    assert not any((models / ".partial").iterdir()) and not ggufs(models)


def test_a_file_without_a_published_sha256_is_not_downloaded(client, smol, models, fake_hub):
    with pytest.raises(DownloadError) as caught:
        Download(client, dataclasses.replace(smol, sha256=""), models).run()
    assert caught.value.kind == "no_sha256" and not ggufs(models)
    assert not fake_hub.served_ranges(SMOL_FILE)


def test_a_stalled_connection_times_out_and_resumes(smol, models, fake_hub, starter_model):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, stall=3.0, stall_after=5 * MB, times=1)
    impatient = HubClient(endpoint=fake_hub.url, timeout=0.5)
    path = Download(impatient, smol, models, retry_delay=0.01).run()
    assert sha256(path) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (5 * MB, smol.size)


def test_the_sidecar_says_what_the_partial_belongs_to(client, smol, models):
    partial_to(client, smol, models, 5 * MB)
    meta = json.loads(partial_paths(models, smol)[1].read_text())
    assert {k: meta[k] for k in ("repo_id", "filename", "revision", "url", "size", "sha256", "etag")} == {
        "repo_id": smol.repo_id, "filename": smol.filename, "revision": smol.revision, "url": smol.url,
        "size": smol.size, "sha256": smol.sha256, "etag": smol.sha256}
    assert meta["started"] > 0


def test_progress_is_throttled_smoothed_and_gives_a_time_left():
    now = [0.0]
    seen: list[tuple[int, int, float, float | None]] = []
    meter = ProgressMeter(2000, lambda *a: seen.append(a), clock=lambda: now[0])
    meter.start(100)
    assert seen == [(100, 2000, 0.0, None)]   # no speed yet, no time left
    for step in range(1, 7):   # 100 bytes every 1/16 s: 1600 bytes/s
        now[0] = step / 16
        meter.update(100 + 100 * step)
    assert [s[0] for s in seen] == [100, 300, 500, 700]   # every 0.125 s, not every update
    done, total, speed, eta = seen[-1]
    assert speed == pytest.approx(1600) and eta == pytest.approx(1300 / 1600)
    now[0] = 0.5
    meter.update(1900)   # a burst: the smoothed speed moves only part of the way
    assert 1600 < seen[-1][2] < 3000
    meter.finish()
    assert seen[-1][0] == 1900 and len(seen) == 6


def test_resume_behind_a_cdn_with_its_own_etags_continues_from_the_partial(client, smol, models, fake_hub,
                                                                           starter_model):
    """On the real Hub, files come from a CDN (302) whose ETags are its own: the file's identity is the
    Hub's X-Linked-Etag on the redirect, so a pause and a resume continue, never start over."""
    fake_hub.redirect = True
    kept = partial_to(client, smol, models, 25 * MB)
    download = Download(HubClient(endpoint=fake_hub.url), smol, models)
    path = download.run()
    assert download.restarts == 0
    assert sha256(path) == sha256(starter_model)
    ranges = fake_hub.served_ranges(SMOL_FILE)
    assert ranges[-1] == (kept, smol.size), ranges
