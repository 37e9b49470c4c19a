"""Secrets (the Hugging Face token) in the system keyring, never in files.

Keyring calls can block forever (a locked Secret Service) or fail (no keyring on a headless
Linux), so each runs on a short-lived thread with a timeout. When no keyring works, the secret
lives in memory for this session only and :attr:`SecretStore.status` says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

SERVICE = "Cove"
HF_TOKEN = "huggingface-token"  # the name the Hugging Face token is kept under
TIMEOUT_S = 3.0
T = TypeVar("T")
logger = logging.getLogger(__name__)


class SecretStore:
    """Get, set and forget named secrets. Blocking calls: use them off the GUI thread."""

    def __init__(self, service: str = SERVICE, timeout: float = TIMEOUT_S) -> None:
        self.service = service
        self.timeout = timeout
        self._memory: dict[str, str] = {}
        self._keyring_ok: bool | None = None
        self.status = "not checked yet"

    def _call(self, fn: Callable[..., T], *args: Any, harmless: tuple[str, ...] = ()) -> tuple[bool, T | None]:
        """Run a keyring call with a timeout; (ok, result). Exceptions never carry the secret out;
        errors named in ``harmless`` count as success."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = fn(*args)
            except Exception as exc:  # noqa: BLE001 - keyring backends raise anything
                if type(exc).__name__ in harmless:
                    box["result"] = None
                else:
                    box["error"] = type(exc).__name__

        thread = threading.Thread(target=run, name="cove-keyring", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self._fallback(f"the system keyring did not answer within {self.timeout:.0f} s (locked?)")
            return False, None
        if "error" in box:
            self._fallback(_reason(box["error"]))
            return False, None
        self._keyring_ok = True
        self.status = "stored in the system keyring"
        return True, box.get("result")

    def _fallback(self, reason: str) -> None:
        logger.warning("secrets in memory only: %s", reason)  # the reason names the error's type, never the secret
        self._keyring_ok = False
        self.status = f"kept in memory for this session only: {reason}"

    def get(self, name: str) -> str | None:
        """The secret, from memory or the keyring; None when there is none."""
        if name in self._memory:
            return self._memory[name]
        if self._keyring_ok is False:
            return None
        import keyring  # here, not at the top: importing keyring's backends costs start-up time

        ok, value = self._call(keyring.get_password, self.service, name)
        return value if ok and isinstance(value, str) else None

    def set(self, name: str, value: str) -> bool:
        """Keep a secret; True when it went into the keyring, False when memory only."""
        import keyring  # here, not at the top: importing keyring's backends costs start-up time

        self._memory[name] = value
        if self._keyring_ok is False:
            return False
        ok, _ = self._call(keyring.set_password, self.service, name, value)
        if ok:
            self._memory.pop(name, None)
        return ok

    def delete(self, name: str) -> None:
        """Forget a secret everywhere Cove keeps it."""
        import keyring  # here, not at the top: importing keyring's backends costs start-up time

        self._memory.pop(name, None)
        if self._keyring_ok is not False:
            self._call(keyring.delete_password, self.service, name, harmless=("PasswordDeleteError",))


def _reason(error_name: str) -> str:
    if error_name == "NoKeyringError":
        return "no system keyring is available"
    if error_name == "KeyringLocked":
        return "the system keyring is locked"
    return f"the system keyring failed ({error_name})"
