"""The window's API server (Settings -> Server): Cove's OpenAI-compatible API over the model the
window has loaded.

Requests run on the generation thread between the window's own answers (the dispatcher hands
each job over with a queued signal and waits for it on its own thread), so the window and the API
share the one loaded model and neither waits on the other's thread. Starting (keyring, bind) and
stopping run on a worker thread; the window hears ``state_changed`` and ``activity``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.core.server.api_server import ApiServer, ServerConfig, ServerStartError
from desktop.core.server.jobs import Job
from desktop.core.server.model_host import LoadedModelCatalog
from desktop.core.system.secrets import SecretStore
from desktop.core.system.settings import ServerSettings, Settings
from desktop.services.background import Worker

logger = logging.getLogger(__name__)

SERVER_KEY = "api-server-key"  # the keyring entry of the API key


class ServerService(QObject):
    """Starts and stops the API server as Settings -> Server says.

    Signals:
        state_changed(bool running, str text): after each start or stop; ``text`` is the URL, or
            why it could not start.
        activity(str text): who is being served now ('' when idle), e.g. '127.0.0.1 · chat'.
    """

    state_changed = Signal(bool, str)
    activity = Signal(str)

    def __init__(self, generation: Any, settings: Settings, secrets: SecretStore,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generation, self._settings, self._secrets = generation, settings, secrets
        self.catalog = LoadedModelCatalog()
        self.server: ApiServer | None = None
        self.url = ""
        self._worker = Worker("cove-api-control", self._on_failed, self)
        generation.model_loaded.connect(self._on_model_loaded)

    @Slot(str, dict)
    def _on_model_loaded(self, path: str, info: dict) -> None:
        self.catalog.loaded = Path(path) if Path(path).suffix == ".gguf" else None

    @property
    def settings(self) -> ServerSettings:
        """The server settings in use."""
        return self._settings.server

    @property
    def running(self) -> bool:
        """Whether the server listens."""
        return self.server is not None

    def apply(self, server: ServerSettings, api_key: str | None = None) -> None:
        """Use these settings: (re)start when enabled, stop when not. ``api_key``: a new key to keep
        in the keyring ('' forgets it; None keeps the stored one)."""
        self._settings.server = server
        self._worker.submit(lambda: self._restart(server, api_key), self._on_state)

    def stop(self) -> None:
        """Stop serving (off the GUI thread)."""
        self._worker.submit(self._stop_now, self._on_state)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and end the worker (at exit)."""
        self._worker.submit(self._stop_now)
        self._worker.stop(timeout)

    def has_key(self) -> bool:
        """Whether an API key is stored (blocking: call from a worker thread only)."""
        return bool(self._secrets.get(SERVER_KEY))

    # -- on the worker thread ---------------------------------------------------------------
    def _stop_now(self) -> tuple[bool, str]:
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        return False, "The API server is off."

    def _restart(self, server: ServerSettings, api_key: str | None) -> tuple[bool, str]:
        self._stop_now()
        if api_key is not None:
            if api_key:
                self._secrets.set(SERVER_KEY, api_key)
            else:
                self._secrets.delete(SERVER_KEY)
        if not server.enabled:
            return False, "The API server is off."
        config = ServerConfig(server.host, server.port, self._secrets.get(SERVER_KEY) or "",
                              list(server.cors_origins), defaults=self._settings.generation)
        try:
            self.server = ApiServer(config, self.catalog, self._execute, self._on_activity).start()
        except ServerStartError as exc:
            return False, str(exc)
        return True, self.server.url

    # -- on the dispatcher thread -----------------------------------------------------------
    def _execute(self, job: Job) -> None:
        self._generation.serve(job)  # queued to the generation thread; the dispatcher waits for its end

    def _on_activity(self, job: Job, running: bool) -> None:
        kind = job.request.kind if hasattr(job.request, "kind") else "embeddings"
        self.activity.emit(f"serving {job.client} · {kind}" if running else "")

    # -- back on the GUI thread -------------------------------------------------------------
    def _on_state(self, state: tuple[bool, str]) -> None:
        running, text = state
        self.url = text if running else ""
        logger.info("API server: %s", text)
        self.state_changed.emit(running, text)

    def _on_failed(self, exc: BaseException) -> None:
        self.server = None
        self.state_changed.emit(False, f"The API server could not start: {exc}")
