"""Real third-party engines for the remote-engine tests: llama-cpp-python's own OpenAI-compatible
server (``python -m llama_cpp.server``, from the same wheel Cove uses, with its [server] extra),
serving a GGUF in a child process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("llama_server_launcher.py")  # llama_cpp.server without weight repacking


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Engine:
    """A running engine: its base URL (``…/v1``), its model id, and a way to kill it mid-answer."""

    url: str
    model: str
    process: subprocess.Popen

    def kill(self) -> None:
        """End the engine at once (SIGKILL): its open streams are cut."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def llama_cpp_server(model: Path, *, threads: int = 2, n_ctx: int = 2048, alias: str = "smollm2",
                     timeout: float = 120.0) -> Iterator[Engine]:
    """``python -m llama_cpp.server`` serving ``model`` as ``alias`` (through :data:`LAUNCHER`); killed at the end."""
    port = free_port()
    command = [sys.executable, str(LAUNCHER), "--model", str(model), "--model_alias", alias,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads)]
    log = open(Path(model).with_name(f"llama-server-{port}.log"), "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    engine = Engine(f"http://127.0.0.1:{port}/v1", alias, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"llama_cpp.server ended: {Path(log.name).read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{engine.url}/models", timeout=2) as response:
                    if json.loads(response.read())["data"]:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("llama_cpp.server did not answer /v1/models in time")
            time.sleep(0.2)
        yield engine
    finally:
        engine.kill()
        log.close()
