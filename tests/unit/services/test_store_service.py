"""The store thread under the background failure contract: a failed job reaches its caller and
the window, and a database that cannot be opened fails every job with the reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from desktop.core.conversations.records import StoreError
from desktop.core.conversations.store import Store
from desktop.services.store_service import StoreService, describe_failure


def test_jobs_run_on_the_store_and_a_failure_reaches_on_error_and_the_error_signal(qtbot, tmp_path: Path):
    service = StoreService(tmp_path / "cove.db")
    with qtbot.waitSignal(service.opened, timeout=10_000):
        service.start()
    try:
        assert service.available and not service.failure
        titles: list[str] = []
        service.submit(lambda s: s.create_conversation("First"), lambda c: titles.append(c.title))
        qtbot.waitUntil(lambda: titles == ["First"], timeout=5_000)

        def locked(_store: Store) -> None:
            raise sqlite3.OperationalError("database is locked")

        failures: list[BaseException] = []
        with qtbot.waitSignal(service.error, timeout=5_000) as blocker:
            service.submit(locked, lambda _r: failures.append(AssertionError("no result")), failures.append)
        assert len(failures) == 1 and isinstance(failures[0], sqlite3.OperationalError)
        assert blocker.args == ["Saving or reading conversations failed: database is locked"]
        listed: list[int] = []
        service.submit(lambda s: s.list_conversations(), lambda cs: listed.append(len(cs)))  # it goes on
        qtbot.waitUntil(lambda: listed == [1], timeout=5_000)
    finally:
        service.stop()


def test_a_database_that_cannot_be_opened_fails_every_job_with_the_reason(qtbot, tmp_path: Path):
    folder = tmp_path / "cove.db"
    folder.mkdir()  # a folder where the database should be
    service = StoreService(folder)
    with qtbot.waitSignal(service.error, timeout=10_000) as blocker:
        service.start()
    try:
        assert "is a folder" in blocker.args[0] and "cannot be saved or shown" in blocker.args[0]
        assert service.failure == blocker.args[0] and not service.available
        failures: list[BaseException] = []
        with qtbot.waitSignal(service.error, timeout=5_000) as later:
            service.submit(lambda s: s.list_conversations(), lambda _r: None, failures.append)
        assert later.args == [service.failure]
        assert isinstance(failures[0], StoreError) and describe_failure(failures[0]) == service.failure
    finally:
        service.stop()


def test_describe_failure_speaks_to_a_person():
    assert "disk is full" in describe_failure(OSError(28, "No space left on device"))
    assert "damaged" in describe_failure(sqlite3.DatabaseError("database disk image is malformed"))
    assert describe_failure(StoreError("Read-only: another window.")) == "Read-only: another window."
