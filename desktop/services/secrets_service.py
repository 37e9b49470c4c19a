"""The secret store off the GUI thread: keyring calls never block the window."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from desktop.core.system.secrets import HF_TOKEN, SecretStore
from desktop.services.background import Worker


class SecretsService(QObject):
    """Checks, saves and forgets the Hugging Face token on a worker thread, one call at a time, in
    order: a slow keyring delays, never reorders. A failure is reported like any other job's
    (:mod:`desktop.services.background`): logged, then told in ``status``.

    Signals:
        status(bool present, str where): after every check, save or forget, whether a token is
            stored and where secrets go ("stored in the system keyring", ...)
    """

    status = Signal(bool, str)

    def __init__(self, store: SecretStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.token_present = False
        self._worker = Worker("cove-secrets", self._on_failed, self)

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

    def stop(self, timeout: float = 1.0) -> None:
        """End the worker thread (bounded wait: a keyring call that hangs is left behind)."""
        self._worker.stop(timeout)

    def _run(self, work: Callable[[], object]) -> None:
        def job() -> tuple[bool, str]:  # on the secrets thread
            work()
            return self._store.get(HF_TOKEN) is not None, self._store.status
        self._worker.submit(job, self._on_status)

    def _on_status(self, result: tuple[bool, str]) -> None:
        self.token_present, where = result
        self.status.emit(self.token_present, where)

    def _on_failed(self, exc: BaseException) -> None:
        self.status.emit(self.token_present, f"not reachable: the secret store failed ({type(exc).__name__})")
