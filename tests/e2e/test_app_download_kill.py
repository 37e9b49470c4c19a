"""Kill -9 the real app in the middle of a download; the next start shows it paused with its bytes
kept, and Resume finishes it without starting over (asserted from the byte ranges the fake Hub
served) with the right sha256."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop.core.system.paths import app_paths
from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO

pytestmark = pytest.mark.e2e
DRIVER = Path(__file__).with_name("download_driver.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_killed_app_resumes_the_download_after_restart(qtbot, start_cove, fake_hub, tmp_path: Path,
                                                        starter_model: Path) -> None:
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=6_000_000)  # ~16 s: time to kill it mid-file
    basedir = tmp_path / "cove"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, str(DRIVER), str(basedir), SMOL_REPO, SMOL_FILE], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = 0
        deadline = time.monotonic() + 90
        while done < 20_000_000 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            state, _, count = line.strip().partition(" ")
            if state == "downloading":
                done = int(count)
        assert done >= 20_000_000, (done, child.stderr.read() if child.poll() is not None else "")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    paths = app_paths(basedir)
    partial = [p for p in (paths.models_dir / ".partial").iterdir() if not p.name.endswith(".json")]
    assert len(partial) == 1 and partial[0].stat().st_size >= 20_000_000 - 2_000_000
    kept = partial[0].stat().st_size
    assert not list(paths.models_dir.rglob("*.gguf")), "an unfinished file must not look like a model"
    fake_hub.behave()
    served_before = len(fake_hub.served_ranges(SMOL_FILE))

    app = start_cove(paths, wait_model=False, safe_mode=True)
    qtbot.mouseClick(app.window.models_button, Qt.MouseButton.LeftButton)
    pane = app.window.models_dialog.download_pane
    qtbot.waitUntil(lambda: bool(pane.queue_view.rows), timeout=10_000)  # read off the GUI thread
    rows = list(pane.queue_view.rows.values())
    assert len(rows) == 1 and rows[0].item.state == "paused", [r.item for r in rows]
    assert rows[0].item.done == kept and "Paused" in rows[0].status.text()
    qtbot.mouseClick(rows[0].resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rows[0].item.state == "done", timeout=60_000)
    path = Path(rows[0].item.paths[0])
    app.window.close()
    app.shutdown()
    ranges = fake_hub.served_ranges(SMOL_FILE)[served_before:]
    assert ranges == [(kept, starter_model.stat().st_size)], (ranges, kept)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(starter_model.read_bytes()).hexdigest()
