"""The one failure contract of background work: results and failures come back on the GUI thread,
in order, and no failure is ever dropped."""

from __future__ import annotations

import logging
import threading

import pytest

from desktop.services.background import Worker, job_name, log_failure


class ExpectedError(Exception):
    """An ordinary outcome (a person is told; the log gets one line)."""


def test_jobs_run_in_order_off_the_gui_thread_and_results_arrive_on_it(qtbot):
    reports: list[BaseException] = []
    worker = Worker("test-order", reports.append)
    ran_on: list[threading.Thread] = []
    results: list[tuple[int, bool]] = []

    def job(n: int) -> int:
        ran_on.append(threading.current_thread())
        return n

    try:
        for n in range(5):
            worker.submit(lambda n=n: job(n), lambda r: results.append((r, threading.current_thread() is
                                                                         threading.main_thread())))
        qtbot.waitUntil(lambda: len(results) == 5, timeout=5_000)
    finally:
        worker.stop()
    assert results == [(n, True) for n in range(5)]
    assert {t.name for t in ran_on} == {"test-order"}
    assert reports == []


def test_a_failure_goes_to_on_error_with_its_traceback_logged_and_the_worker_goes_on(qtbot, caplog):
    reports: list[BaseException] = []
    worker = Worker("test-fail", reports.append)
    done: list[object] = []
    errors: list[tuple[BaseException, bool]] = []

    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    try:
        with caplog.at_level(logging.INFO, logger="desktop.services.background"):
            worker.submit(broken, done.append, lambda exc: errors.append((exc, threading.current_thread() is
                                                                          threading.main_thread())))
            worker.submit(lambda: "after", done.append)
            qtbot.waitUntil(lambda: done == ["after"], timeout=5_000)
    finally:
        worker.stop()
    assert len(errors) == 1 and isinstance(errors[0][0], ZeroDivisionError) and errors[0][1]
    assert reports == []  # the caller's on_error took it
    record = next(r for r in caplog.records if "broken" in r.getMessage())
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "test-fail" in record.getMessage()


def test_without_on_error_the_failure_goes_to_the_workers_report(qtbot):
    reports: list[BaseException] = []
    worker = Worker("test-report", reports.append)
    try:
        worker.submit(lambda: {}["missing"], lambda _r: pytest.fail("a failed job has no result"))
        qtbot.waitUntil(lambda: len(reports) == 1, timeout=5_000)
    finally:
        worker.stop()
    assert isinstance(reports[0], KeyError)


def test_an_expected_failure_is_logged_in_one_line(qtbot, caplog):
    reports: list[BaseException] = []
    worker = Worker("test-expected", reports.append, expected=(ExpectedError,))

    def offline() -> None:
        raise ExpectedError("the Hub cannot be reached")

    try:
        with caplog.at_level(logging.INFO, logger="desktop.services.background"):
            worker.submit(offline)
            qtbot.waitUntil(lambda: len(reports) == 1, timeout=5_000)
    finally:
        worker.stop()
    [record] = [r for r in caplog.records if "offline" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "the Hub cannot be reached" in record.getMessage()


def test_wait_idle_and_stop(qtbot, caplog):
    worker = Worker("test-stop", lambda exc: pytest.fail(f"unexpected failure {exc!r}"))
    gate = threading.Event()
    worker.submit(gate.wait)
    assert not worker.wait_idle(0.05)  # the first job is still waiting
    gate.set()
    assert worker.wait_idle(5.0)
    worker.stop()
    ran: list[int] = []
    with caplog.at_level(logging.WARNING, logger="desktop.services.background"):
        worker.submit(lambda: ran.append(1))
    assert ran == [] and "after the worker stopped" in caplog.text


def test_log_failure_and_job_names():
    log = logging.getLogger("tests.background")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        log_failure(log, "saving", OSError(28, "No space left on device"), (OSError,))
        log_failure(log, "saving", ValueError("bad"))
    finally:
        log.removeHandler(handler)
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    assert records[0].exc_info is None and records[1].exc_info is not None

    def outer() -> object:
        def inner() -> None: ...
        return inner

    assert job_name(outer()) == "test_log_failure_and_job_names.outer.inner"
