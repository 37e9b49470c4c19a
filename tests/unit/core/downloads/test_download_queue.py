"""The download queue against the fake Hub: FIFO, pause/resume/cancel, split models, persistence."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from desktop.core.downloads.download import partial_size
from desktop.core.downloads.queue import (
    CANCELLED,
    DONE,
    DOWNLOADING,
    FAILED,
    PAUSED,
    QUEUED,
    REMOVED,
    DownloadQueue,
    QueueItem,
)
from desktop.core.hub.client import HubClient, RemoteFile
from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO

MB = 1 << 20


class Recorder:
    """Collects the listener's items; can act once when an item has ``at`` bytes done."""

    def __init__(self) -> None:
        self.items: list[QueueItem] = []
        self.lock = threading.Lock()
        self.action: tuple[int, object] | None = None

    def __call__(self, item: QueueItem) -> None:
        with self.lock:
            self.items.append(item)
            action = self.action
            if action is not None and item.state == DOWNLOADING and item.done >= action[0]:
                self.action = None
        if action is not None and self.action is None:
            action[1](item)   # type: ignore[operator]

    def states(self, item_id: str) -> list[str]:
        seen: list[str] = []
        for item in self.items:
            if item.id == item_id and (not seen or seen[-1] != item.state):
                seen.append(item.state)
        return seen


@pytest.fixture
def client(fake_hub) -> HubClient:
    return HubClient(endpoint=fake_hub.url)


@pytest.fixture
def smol(client: HubClient) -> RemoteFile:
    return next(f for f in client.repo(SMOL_REPO).files if f.filename == SMOL_FILE)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "models", tmp_path / "downloads.json"


def slow(fake_hub, repo: str = SMOL_REPO, file: str = SMOL_FILE) -> None:
    """Slow the next GET of ``file`` to 40 MB/s, so a listener's action lands mid-download."""
    fake_hub.misbehave(repo, file, throttle=40 * MB, times=1)


def make_queue(fake_hub, folders, listener=None, **kw) -> DownloadQueue:
    models, state = folders
    return DownloadQueue(lambda: HubClient(endpoint=fake_hub.url), models, state, listener,
                         retry_delay=0.01, **kw)


def started(fake_hub, folders, smol, at: int, action) -> tuple[DownloadQueue, Recorder, str]:
    """A queue downloading ``smol`` slowly; ``action(queue, item)`` runs once ``at`` bytes are done."""
    seen = Recorder()
    queue = make_queue(fake_hub, folders, seen)
    slow(fake_hub)
    seen.action = (at, lambda item: action(queue, item))
    return queue, seen, queue.add([smol])


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_items_download_one_after_the_other_in_order(fake_hub, folders, client, smol, starter_model):
    fake_hub.add_repo("someone/copy-GGUF", {"copy.Q4_1.gguf": starter_model})
    copy = client.repo("someone/copy-GGUF").files[0]
    seen = Recorder()
    queue = make_queue(fake_hub, folders, seen)
    first = queue.add([smol], "SmolLM2")
    second = queue.add([copy])
    assert queue.add([smol]) == first   # the same model twice is one item
    assert queue.wait_idle(60)
    done = queue.items()
    assert [(i.id, i.state, i.done, i.total) for i in done] == [
        (first, DONE, smol.size, smol.size), (second, DONE, copy.size, copy.size)]
    assert done[0].label == "SmolLM2" and done[1].label == "copy.Q4_1.gguf"
    assert sha256(done[0].paths[0]) == sha256(done[1].paths[0]) == smol.sha256
    assert seen.states(first) == [QUEUED, DOWNLOADING, DONE]
    started = [i.id for i in seen.items if i.state == DOWNLOADING]
    assert started.index(second) > len(started) - 1 - started[::-1].index(first)   # FIFO
    progress = [i for i in seen.items if i.id == first and i.state == DOWNLOADING and i.done]
    assert progress and any(i.bytes_per_s > 0 and i.eta_s is not None for i in progress)
    assert json.loads(folders[1].read_text())["items"] == []   # finished items are not kept
    queue.close()


def test_pause_and_resume_continue_from_the_partial(fake_hub, folders, smol, starter_model):
    queue, seen, item_id = started(fake_hub, folders, smol, 20 * MB, lambda queue, item: queue.pause(item.id))
    assert queue.wait_idle(60)
    [paused] = queue.items()
    kept = partial_size(folders[0], smol)
    assert paused.state == PAUSED and paused.done == kept >= 20 * MB
    queue.resume(item_id)
    assert queue.wait_idle(60)
    [done] = queue.items()
    assert done.state == DONE and sha256(done.paths[0]) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (kept, smol.size)
    assert seen.states(item_id) == [QUEUED, DOWNLOADING, PAUSED, QUEUED, DOWNLOADING, DONE]
    queue.close()


def test_cancel_deletes_the_partial_and_forget_drops_the_item(fake_hub, folders, smol):
    queue, seen, item_id = started(fake_hub, folders, smol, 10 * MB, lambda queue, item: queue.cancel(item.id))
    assert queue.wait_idle(60)
    assert [i.state for i in queue.items()] == [CANCELLED]
    assert not list(folders[0].rglob("*.part")) and not list(folders[0].rglob("*.gguf"))
    queue.forget(item_id)
    assert queue.items() == [] and seen.items[-1].state == REMOVED
    queue.close()


def test_a_failed_item_says_why_does_not_block_the_next_and_can_be_retried(fake_hub, folders, client, smol, starter_model):
    fake_hub.add_repo("someone/copy-GGUF", {"copy.Q4_1.gguf": starter_model})
    copy = client.repo("someone/copy-GGUF").files[0]
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, status=403)
    seen = Recorder()
    queue = make_queue(fake_hub, folders, seen)
    first, second = queue.add([smol]), queue.add([copy])
    assert queue.wait_idle(60)
    failed, done = queue.items()
    assert failed.state == FAILED and failed.error_kind == "auth" and "token" in failed.error.lower()
    assert done.state == DONE and done.id == second
    assert seen.states(first) == [QUEUED, DOWNLOADING, FAILED]   # the listener sees them in order
    fake_hub.behave()
    assert queue.add([smol]) == first   # asking again retries the failed item
    assert queue.wait_idle(60) and queue.items()[0].state == DONE
    assert seen.states(first)[-3:] == [QUEUED, DOWNLOADING, DONE]
    queue.close()


def test_a_split_model_is_placed_only_when_every_part_is_verified(fake_hub, folders, starter_model):
    data = starter_model.read_bytes()
    names = ["m-Q4_1-00001-of-00002.gguf", "m-Q4_1-00002-of-00002.gguf"]
    fake_hub.add_repo("someone/split-GGUF", {names[0]: data[: len(data) // 2], names[1]: data[len(data) // 2:]})
    parts = HubClient(endpoint=fake_hub.url).repo("someone/split-GGUF").files
    assert [p.filename for p in parts] == names
    target = folders[0] / "someone" / "split-GGUF"
    seen = Recorder()
    placed_early: list[bool] = []
    slow(fake_hub, "someone/split-GGUF", names[1])
    seen.action = (len(data) // 2 + 5 * MB, lambda item: placed_early.append(target.exists()))
    queue = make_queue(fake_hub, folders, seen)
    queue.add(parts, "m Q4_1")
    assert queue.wait_idle(60)
    [item] = queue.items()
    assert item.state == DONE and item.total == len(data) and placed_early == [False]
    assert [Path(p).name for p in item.paths] == names
    assert b"".join(Path(p).read_bytes() for p in item.paths) == data
    queue.close()


def test_unfinished_items_come_back_after_a_restart_and_resume_from_their_partials(fake_hub, folders, smol, starter_model):
    snapshot: dict[str, str] = {}
    seen = Recorder()
    queue = make_queue(fake_hub, folders, seen)

    def as_if_killed(item: QueueItem) -> None:
        snapshot["state"] = folders[1].read_text()   # what a kill -9 right now would leave
        threading.Thread(target=queue.close).start()

    slow(fake_hub)
    seen.action = (25 * MB, as_if_killed)
    item_id = queue.add([smol], "SmolLM2")
    queue._thread.join(60)
    assert json.loads(snapshot["state"])["items"][0]["state"] == DOWNLOADING
    folders[1].write_text(snapshot["state"])
    kept = partial_size(folders[0], smol)
    assert kept >= 25 * MB

    again = make_queue(fake_hub, folders)
    [item] = again.items()
    assert (item.id, item.label, item.state, item.done, item.total) == (item_id, "SmolLM2", PAUSED, kept, smol.size)
    again.resume(item_id)
    assert again.wait_idle(60)
    [item] = again.items()
    assert item.state == DONE and sha256(item.paths[0]) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (kept, smol.size)
    again.close()


def test_resume_unfinished_queues_them_at_once(fake_hub, folders, smol, starter_model):
    queue, _, _ = started(fake_hub, folders, smol, 15 * MB,
                          lambda queue, item: threading.Thread(target=queue.close).start())
    queue._thread.join(30)
    assert json.loads(folders[1].read_text())["items"][0]["state"] == QUEUED
    kept = partial_size(folders[0], smol)
    again = make_queue(fake_hub, folders, resume_unfinished=True)
    assert again.wait_idle(60)
    [item] = again.items()
    assert item.state == DONE and sha256(item.paths[0]) == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (kept, smol.size)
    again.close()
