"""The download pane driven through the real widgets against the fake Hub serving real GGUF files:
search, choose a file, download with visible progress, chat with the downloaded model; pause and
resume; a file that fails verification never reaches the model picker; offline; gated + token."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import ANSWER_TIMEOUT_MS, LOAD_TIMEOUT_MS, ask
from tests.helpers.fakehub import GEMMA_FILE, GEMMA_REPO, SMOL_FILE, SMOL_REPO

DOWNLOAD_TIMEOUT_MS = 120_000


def open_pane(qtbot, app):
    """Click Models… and return the download pane."""
    qtbot.mouseClick(app.window.models_button, Qt.MouseButton.LeftButton)
    dialog = app.window.models_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog.download_pane


def search_and_open(qtbot, pane, query: str, repo_id: str) -> None:
    """Type a search, press Enter, click the repository in the results, wait for its files."""
    pane.search_box.clear()
    qtbot.keyClicks(pane.search_box, query)
    with qtbot.waitSignal(pane.hub.search_finished, timeout=30_000):
        qtbot.keyClick(pane.search_box, Qt.Key.Key_Return)
    rows = [pane.results.item(i) for i in range(pane.results.count())]
    target = next(item for item in rows if item.text().startswith(repo_id))
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        rect = pane.results.visualItemRect(target)
        qtbot.mouseClick(pane.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def row_of(pane, filename: str) -> int:
    """The file table row showing ``filename``."""
    for row in range(pane.files.rowCount()):
        if pane.files.item(row, 0).text().startswith(filename):
            return row
    raise AssertionError(f"{filename} not in the file table")


def click_download(qtbot, pane, filename: str) -> None:
    button = pane.files.cellWidget(row_of(pane, filename), 4)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def picker_paths(app) -> list[str]:
    picker = app.window.model_picker
    return [picker.itemData(i) for i in range(picker.count())]


def wait_state(qtbot, pane, state: str, timeout: int = DOWNLOAD_TIMEOUT_MS):
    """Wait until the (only) download row reaches ``state``; returns its row widget."""
    qtbot.waitUntil(lambda: any(r.item.state == state for r in pane.queue_view.rows.values()), timeout=timeout)
    return next(r for r in pane.queue_view.rows.values() if r.item.state == state)


def test_search_download_with_progress_then_chat(qtbot, start_cove, fake_hub_gemma, gemma_model: Path) -> None:
    fake_hub_gemma.misbehave(GEMMA_REPO, GEMMA_FILE, throttle=60_000_000)  # ~4 s: progress is seen
    app = start_cove()
    pane = open_pane(qtbot, app)
    assert pane.results.count() >= 6, "the recommended models are shown first"
    assert fake_hub_gemma.requests == [], "opening the pane must not touch the network"
    search_and_open(qtbot, pane, "gemma", GEMMA_REPO)
    assert "License: gemma" in pane.repo_title.text()
    qtbot.waitUntil(lambda: pane.verdict_text(GEMMA_FILE) not in ("", "checking…"), timeout=30_000)
    assert pane.verdict_text(GEMMA_FILE) == "runs well"
    assert pane.files.item(row_of(pane, GEMMA_FILE), 1).text() == "Q4_K_M"

    seen: list[tuple[int, str]] = []
    pane.downloads.item_changed.connect(lambda item: seen.append((item.done, item.state)))
    click_download(qtbot, pane, GEMMA_FILE)
    row = wait_state(qtbot, pane, "downloading")
    qtbot.waitUntil(lambda: 0 < row.bar.value() < 1000 and "/s" in row.status.text(), timeout=30_000)
    assert "left" in row.status.text(), row.status.text()
    row = wait_state(qtbot, pane, "done")
    assert row.bar.value() == 1000 and "verified" in row.status.text()
    progress = sorted({done for done, state in seen if state == "downloading"})
    assert len(progress) >= 5, f"progress was shown only {len(progress)} times"
    path = Path(row.item.paths[0])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(gemma_model.read_bytes()).hexdigest()
    qtbot.waitUntil(lambda: str(path) in picker_paths(app), timeout=10_000)

    with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as blocker:
        qtbot.mouseClick(row.use_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "ready", blocker.args
    assert app.controller.model_path == str(path)
    app.controller.settings.generation.seed, app.controller.settings.generation.max_tokens = 7, 24
    message_id, status, stats = ask(qtbot, app, "Name a colour.", timeout=ANSWER_TIMEOUT_MS)
    assert status == "complete" and stats["completion_tokens"] > 0
    assert app.window.chat_view.widget_for(message_id).text.strip()


def test_pause_and_resume_continue_where_they_stopped(qtbot, start_cove, fake_hub, starter_model: Path) -> None:
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=8_000_000)
    app = start_cove()
    pane = open_pane(qtbot, app)
    first = pane.results.item(0)  # a recommended model, straight from the catalog
    assert first.text().startswith(SMOL_REPO)
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        qtbot.mouseClick(pane.results.viewport(), Qt.MouseButton.LeftButton,
                         pos=pane.results.visualItemRect(first).center())
    assert pane.files.item(row_of(pane, SMOL_FILE), 0).text().endswith("★ recommended")
    click_download(qtbot, pane, SMOL_FILE)
    row = wait_state(qtbot, pane, "downloading")
    qtbot.waitUntil(lambda: row.item.done > 10_000_000, timeout=30_000)
    qtbot.mouseClick(row.pause_button, Qt.MouseButton.LeftButton)
    row = wait_state(qtbot, pane, "paused", timeout=10_000)
    kept = row.item.done
    assert "Paused" in row.status.text() and row.resume_button.isVisible()
    fake_hub.behave()
    qtbot.mouseClick(row.resume_button, Qt.MouseButton.LeftButton)
    row = wait_state(qtbot, pane, "done")
    ranges = fake_hub.served_ranges(SMOL_FILE)  # (start, end) sent; header reads for the fit verdict first
    size = starter_model.stat().st_size
    assert kept > 0 and ranges[-1] == (kept, size), (ranges, kept)  # resumed at the kept bytes, not from zero
    assert sum(end - start for start, end in ranges) < 1.1 * size, ranges
    assert hashlib.sha256(Path(row.item.paths[0]).read_bytes()).hexdigest() == \
        hashlib.sha256(starter_model.read_bytes()).hexdigest()


def test_a_file_that_fails_verification_never_reaches_the_picker(qtbot, paths, start_cove, fake_hub) -> None:
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, flip_byte=5_000_000)
    app = start_cove()
    pane = open_pane(qtbot, app)
    search_and_open(qtbot, pane, "smollm2", SMOL_REPO)
    click_download(qtbot, pane, SMOL_FILE)
    row = wait_state(qtbot, pane, "failed")
    assert "sha256" in row.status.text() or "verif" in row.status.text().lower(), row.status.text()
    app.controller.refresh_models()
    qtbot.wait(500)
    assert not [p for p in picker_paths(app) if p and str(paths.models_dir) in p], picker_paths(app)
    assert not list(paths.models_dir.rglob("*.gguf"))


def test_offline_says_so_and_the_chat_still_works(qtbot, start_cove, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused, as when offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    app = start_cove()
    pane = open_pane(qtbot, app)
    qtbot.keyClicks(pane.search_box, "qwen")
    with qtbot.waitSignal(pane.hub.failed, timeout=30_000) as blocker:
        qtbot.keyClick(pane.search_box, Qt.Key.Key_Return)
    assert blocker.args[0] == "offline", blocker.args
    assert pane.notice.isVisible() and "offline" in pane.notice.text()
    _mid, status, _stats = ask(qtbot, app, "Hello")
    assert status == "complete"


def test_gated_model_asks_for_a_token_kept_in_memory_without_keyring(qtbot, start_cove, fake_hub, tmp_path: Path,
                                                                     starter_model: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    gated, filename = "meta-llama/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_1.gguf"
    fake_hub.add_repo(gated, {filename: starter_model}, gated="manual", license="llama3.2")
    token = "hf_TESTtoken0123456789abcdefXYZ"
    fake_hub.add_token(token, (gated,))
    app = start_cove()
    pane = open_pane(qtbot, app)
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        pane.open_repo(gated)
    assert "Gated: yes" in pane.repo_title.text()
    assert pane.token_box.isVisible(), "a gated repository asks for a token before anything else"
    qtbot.waitUntil(lambda: pane.verdict_text(filename) not in ("", "checking…"), timeout=30_000)
    assert pane.verdict_text(filename) == "token needed"
    qtbot.keyClicks(pane.token_field, token)
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        qtbot.mouseClick(pane.token_save, Qt.MouseButton.LeftButton)
    assert "memory" in pane.token_status.text() and "session" in pane.token_status.text()
    qtbot.waitUntil(lambda: pane.verdict_text(filename) == "runs well", timeout=30_000)
    click_download(qtbot, pane, filename)
    row = wait_state(qtbot, pane, "done")
    assert Path(row.item.paths[0]).stat().st_size == starter_model.stat().st_size
    app.window.close()  # settings are written at shutdown: the token must not be among them
    app.shutdown()
    leaks = [p
 for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    home_token = Path.home() / ".cache" / "huggingface" / "token"
    assert not leaks, leaks
    assert not (home_token.exists() and token in home_token.read_text())


def test_a_refused_token_is_said_once_not_retried_in_a_loop(qtbot, start_cove, fake_hub, starter_model: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    gated, filename = "meta-llama/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_1.gguf"
    fake_hub.add_repo(gated, {filename: starter_model}, gated="manual")
    fake_hub.add_token("hf_rightToken000000000000000000", (gated,))
    app = start_cove()
    pane = open_pane(qtbot, app)
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        pane.open_repo(gated)
    qtbot.keyClicks(pane.token_field, "hf_wrongToken111111111111111111")
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):  # saved, then the one retry
        qtbot.mouseClick(pane.token_save, Qt.MouseButton.LeftButton)
    click_download(qtbot, pane, filename)
    row = wait_state(qtbot, pane, "failed")
    assert pane.token_box.isVisible() and "token" in pane.token_text.text().lower(), pane.token_text.text()
    fake_hub.settle()
    before = len(fake_hub.requests)
    qtbot.wait(2000)
    fake_hub.settle()
    assert len(fake_hub.requests) == before, "a refused token must not be retried on its own"
    assert row.item.state == "failed"


def test_one_header_per_repository_gives_every_quantization_its_verdict(qtbot, start_cove, fake_hub, tmp_path: Path,
                                                                        starter_model: Path) -> None:
    """A repository's files are quantizations of one model: the pane reads one GGUF header (the
    smallest file's) and judges the others by their size, instead of megabytes per file."""
    big = tmp_path / "big.gguf"  # the same model padded to 4x its size, as a bigger quantization would be
    with starter_model.open("rb") as src, big.open("wb") as out:
        out.write(src.read())
        out.truncate(4 * starter_model.stat().st_size)
    repo = "someone/SmolLM2-135M-Instruct-GGUF"
    fake_hub.add_repo(repo, {"SmolLM2-135M-Instruct-Q4_1.gguf": starter_model, "SmolLM2-135M-Instruct-F16.gguf": big})
    app = start_cove()
    pane = open_pane(qtbot, app)
    seen = []
    pane.hub.verdict_ready.connect(seen.append)
    with qtbot.waitSignal(pane.hub.repo_loaded, timeout=30_000):
        pane.open_repo(repo)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=30_000)
    assert {v.label for v in seen} == {"runs well"}, seen
    small, large = sorted(seen, key=lambda v: "F16" in v.name)
    assert "F16" in large.name and large.reason != small.reason  # its weights are 4x the Q4_1 file's
    fake_hub.settle()
    assert not [r for r in fake_hub.requests if r.path.endswith("F16.gguf") and r.method == "GET"]
