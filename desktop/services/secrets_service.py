"""The secret store off the GUI thread: keyring calls never block the window."""

from __future__ import annotations

import queue
import threading

from PySide6.QtCore import QObject, Signal

from desktop.core.system.secrets import HF_TOKEN, SecretStore


class SecretsService(QObject):
    """Signals: status(str present_text, str where) after every check, save or forget."""

    status = Signal(bool, str)

    def __init__(self, store: SecretStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.token_present = False
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="cove-secrets", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:  # one job at a time, in order: a slow keyring delays, never reorders
            work = self._jobs.get()
            work()
            self.token_present = self._store.get(HF_TOKEN) is not None
            self.status.emit(self.token_present, self._store.status)

    def _run(self, work) -> None:  # noqa: ANN001 - a callable run on the secrets thread
        self._jobs.put(work)

    def check(self) -> None:
        """Find out whether a token is stored and where secrets go."""
        self._run(lambda: None)

    def save_token(self, token: str) -> None:
        """Keep the Hugging Face token (keyring, else memory for this session)."""
        token = token.strip()
        if token:
            self._run(lambda: self._store.set(HF_TOKEN, token))

    def forget_token(self) -> None:
        """Remove the token everywhere."""
        self._run(lambda: self._store.delete(HF_TOKEN))

    def token(self) -> str | None:
        """The token for a Hub call (blocking: call from a worker thread only)."""
        return self._store.get(HF_TOKEN)
