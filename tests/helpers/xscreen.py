"""A real X screen (Xvfb) for tests that start Cove as a process and take screenshots of it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def virtual_screen(first_display: int) -> Iterator[dict[str, str]]:
    """Start Xvfb (when installed) and yield the environment that puts Qt on it; offscreen otherwise.
    ``first_display``: the base of the display number, kept apart per test so runs cannot collide."""
    if not shutil.which("Xvfb"):
        yield {"QT_QPA_PLATFORM": "offscreen"}
        return
    display = f":{first_display + os.getpid() % 9}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def screenshot(env: dict[str, str], path: Path, settle_s: float = 1.0) -> Path | None:
    """Save the whole X screen to ``path`` (None when there is no X screen or no imagemagick)."""
    if "DISPLAY" not in env or not shutil.which("import"):
        return None
    time.sleep(settle_s)  # let the window paint
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=30)
    return path


def stop_group(proc: subprocess.Popen | None) -> None:
    """End a process started with ``start_new_session=True`` and everything it started."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
