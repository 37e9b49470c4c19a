"""Keyring work on the secrets thread: in order, and a failure is reported, never the end of it."""

from __future__ import annotations

from desktop.core.system.secrets import SecretStore
from desktop.services.secrets_service import SecretsService


class MemoryStore(SecretStore):
    """A secret store in memory whose next ``set`` can be made to fail as a broken backend would."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.status = "kept in memory for this test"
        self.fail_next = False

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> bool:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the backend broke")
        self.values[name] = value
        return False

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_status_follows_each_call_in_order_and_a_failure_is_reported(qtbot):
    store = MemoryStore()
    service = SecretsService(store)
    seen: list[tuple[bool, str]] = []
    service.status.connect(lambda present, where: seen.append((present, where)))
    try:
        service.check()
        service.save_token("  hf_abc  ")
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=5_000)
        assert seen == [(False, "kept in memory for this test"), (True, "kept in memory for this test")]
        assert service.token_present and service.token() == "hf_abc"
        store.fail_next = True
        service.save_token("hf_other")
        service.forget_token()  # still served after the failure
        qtbot.waitUntil(lambda: len(seen) == 4, timeout=5_000)
    finally:
        service.stop()
    assert seen[2][0] is True and "the secret store failed (RuntimeError)" in seen[2][1]
    assert seen[3] == (False, "kept in memory for this test")
    assert not service.token_present and store.values == {}
