"""The log: where it is, how it rotates, what it keeps (failures with tracebacks) and what it
keeps out (message text, unless the debug switch is on)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from desktop.core.system import logs
from desktop.core.system.paths import BASEDIR_ENV, AppPaths, app_paths


@pytest.fixture
def logging_to(tmp_path: Path) -> Iterator[AppPaths]:
    """Paths below tmp_path; the log is closed and the hooks put back after the test."""
    paths = app_paths(tmp_path / "cove")
    yield paths
    logs.stop_logging()
    logs.set_debug(False)


def test_the_log_folder_is_the_users_log_folder_or_below_the_basedir(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert app_paths().log_dir == Path(platformdirs.user_log_dir("Cove", appauthor=False))
    assert app_paths(tmp_path / "a").log_dir == tmp_path / "a" / "logs"
    monkeypatch.setenv(BASEDIR_ENV, str(tmp_path / "b"))
    assert app_paths().log_dir == tmp_path / "b" / "logs"
    assert app_paths().ensure().log_dir.is_dir()


def test_the_log_file_is_created_below_the_basedir_and_rotates(logging_to: AppPaths, tmp_path: Path) -> None:
    path = logs.setup_logging(logging_to, max_bytes=4000, backups=2)
    assert path == tmp_path / "cove" / "logs" / "cove.log" and path.is_file()
    assert logs.log_file() == path
    log = logging.getLogger("desktop.core.engine.example")
    for n in range(200):
        log.info("line %03d %s", n, "x" * 60)
    folder = path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["cove.log", "cove.log.1", "cove.log.2"]
    assert all(p.stat().st_size <= 4000 for p in folder.iterdir())
    text = path.read_text(encoding="utf-8")
    assert "line 199" in text and "INFO" in text and "desktop.core.engine.example" in text
    assert "line 000" not in "".join(p.read_text(encoding="utf-8") for p in folder.iterdir())  # rotated away


def test_cove_logs_from_info_and_libraries_from_warning(logging_to: AppPaths) -> None:
    path = logs.setup_logging(logging_to)
    logging.getLogger("desktop.services.example").info("cove info")
    logging.getLogger("desktop.services.example").debug("cove debug")
    logging.getLogger("somelibrary").info("library info")
    logging.getLogger("somelibrary").warning("library warning")
    text = path.read_text(encoding="utf-8")
    assert "cove info" in text and "library warning" in text
    assert "cove debug" not in text and "library info" not in text
    logs.set_debug(True)
    logging.getLogger("desktop.services.example").debug("now with debug")
    assert "now with debug" in path.read_text(encoding="utf-8")


def test_setting_up_again_moves_the_log_and_closes_the_old_file(logging_to: AppPaths, tmp_path: Path) -> None:
    first = logs.setup_logging(logging_to)
    second = logs.setup_logging(app_paths(tmp_path / "other"))
    logging.getLogger("desktop.example").warning("only in the second")
    assert "only in the second" in second.read_text(encoding="utf-8")
    assert "only in the second" not in first.read_text(encoding="utf-8")
    assert sum(isinstance(h, logging.handlers.RotatingFileHandler) for h in logging.getLogger().handlers) == 1


def test_content_gives_only_the_length_unless_debug_is_on(logging_to: AppPaths) -> None:
    assert logs.content("What is my password?") == "<20 chars>"
    assert not logs.debug_enabled()
    logs.set_debug(True)
    assert logs.debug_enabled() and "What is my password?" in logs.content("What is my password?")
    assert "\n" not in logs.content("two\nlines")  # one log line per record
    logs.set_debug(False)
    assert logs.content("") == "<0 chars>"


def test_an_exception_in_a_background_thread_is_logged_with_its_traceback(logging_to: AppPaths,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException | None] = []
    # The hook the log chains to (pytest's own would report the deliberate failure as a warning).
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    path = logs.setup_logging(logging_to)

    def failing_job() -> None:
        raise RuntimeError("the disk went away")

    worker = threading.Thread(target=failing_job, name="cove-example-worker")
    worker.start()
    worker.join()
    text = path.read_text(encoding="utf-8")
    assert "uncaught exception in thread cove-example-worker" in text
    assert "Traceback (most recent call last)" in text and "in failing_job" in text
    assert "RuntimeError: the disk went away" in text
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)  # the previous hook still runs
    logs.stop_logging()
    assert threading.excepthook is not logs._log_uncaught_in_thread  # put back


def test_an_uncaught_exception_on_the_main_thread_is_logged(logging_to: AppPaths,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type] = []
    monkeypatch.setattr("sys.excepthook", lambda kind, exc, tb: seen.append(kind))
    path = logs.setup_logging(logging_to)
    try:
        raise ValueError("bad value 42")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    text = path.read_text(encoding="utf-8")
    assert "CRITICAL" in text and "uncaught exception" in text and "ValueError: bad value 42" in text
    assert seen == [ValueError]
