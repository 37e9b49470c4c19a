"""`cove serve` in a child process, as a person starts it: its URL read from its first line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from desktop.core.system.paths import AppPaths


@dataclass
class Served:
    """A running `cove serve`: its base URL (``…/v1``) and process."""

    url: str
    process: subprocess.Popen

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def stderr(self) -> str:
        """What it said on standard error so far (after it ended)."""
        return self.process.stderr.read() if self.process.stderr and self.process.poll() is not None else ""


def serve_command(paths: AppPaths, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `cove serve` over ``paths``."""
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent))
    return [sys.executable, "-m", "desktop", "serve", "--port", "0", *args], env


@contextlib.contextmanager
def cove_serve(paths: AppPaths, *args: str, timeout: float = 120.0) -> Iterator[Served]:
    """Start `cove serve --port 0 ARGS`, wait for its URL, stop it (SIGTERM, then kill) at the end."""
    command, env = serve_command(paths, *args)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + timeout
        line = process.stdout.readline()
        if "listening on" not in line:
            process.wait(max(1.0, deadline - time.monotonic()))
            raise AssertionError(f"cove serve did not start: {line!r} {process.stderr.read()}")
        yield Served(line.rsplit(" ", 1)[1].strip(), process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            stream.close()
