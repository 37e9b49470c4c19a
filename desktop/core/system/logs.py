"""Cove's log: one rotating file in the user's log folder, fed by a logger per module.

Modules log through ``logging.getLogger(__name__)``, so every logger sits below ``desktop``
(``desktop.core.engine.runtime``, ``desktop.services.store_service``...). :func:`setup_logging`,
called once at start-up by the window and by the command line, sends them to ``cove.log`` in
:attr:`AppPaths.log_dir`, with uncaught exceptions of any thread, tracebacks included.

What people write and what models answer stays out of the log: code logs such text through
:func:`content`, which gives only its length unless the person turned on the debug switch
(Settings → Privacy, :attr:`Settings.debug_log`).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from desktop.core.system.paths import AppPaths

LOG_FILE = "cove.log"
MAX_BYTES = 1_000_000  # per file; with BACKUPS older files, the log never takes more than 4 MB
BACKUPS = 3
PACKAGE = "desktop"  # the logger every module's logger sits below
FORMAT = "%(asctime)s %(levelname)-8s %(name)s [%(threadName)s] %(message)s"

logger = logging.getLogger(__name__)


class _State:
    """The installed handler and the hooks it replaced (one log per process)."""

    debug = False
    handler: logging.Handler | None = None
    sys_hook: Any = None
    thread_hook: Any = None


def setup_logging(paths: AppPaths, debug: bool = False, *, max_bytes: int = MAX_BYTES,
                  backups: int = BACKUPS) -> Path:
    """Log to ``paths.log_dir``/cove.log (rotated at ``max_bytes``, ``backups`` old files kept) and
    log uncaught exceptions; ``debug`` as :func:`set_debug`. Calling it again moves the log.
    Returns the log file's path."""
    stop_logging()
    folder = paths.log_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    # On the root logger, so the libraries' warnings (huggingface_hub, ...) land in the file too;
    # they stay at the root's WARNING level, Cove's own loggers log from INFO.
    logging.getLogger().addHandler(handler)
    _State.handler = handler
    _State.sys_hook, sys.excepthook = sys.excepthook, _log_uncaught
    _State.thread_hook, threading.excepthook = threading.excepthook, _log_uncaught_in_thread
    set_debug(debug)
    logger.info("log opened: pid %d, Python %s, %s", os.getpid(), platform.python_version(), platform.platform())
    return path


def stop_logging() -> None:
    """Close the log file and put the previous exception hooks back (no-op when not logging)."""
    handler = _State.handler
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    _State.handler = None
    if sys.excepthook is _log_uncaught:
        sys.excepthook = _State.sys_hook
    if threading.excepthook is _log_uncaught_in_thread:
        threading.excepthook = _State.thread_hook


def log_file() -> Path | None:
    """The file being logged to, or None before :func:`setup_logging`."""
    handler = _State.handler
    return Path(handler.baseFilename) if isinstance(handler, logging.FileHandler) else None


def set_debug(on: bool) -> None:
    """Turn the debug switch on or off: with it on, :func:`content` lets text through and Cove's
    loggers log from DEBUG; off, lengths only, from INFO."""
    _State.debug = bool(on)
    logging.getLogger(PACKAGE).setLevel(logging.DEBUG if on else logging.INFO)


def debug_enabled() -> bool:
    """True while the debug switch is on."""
    return _State.debug


def content(text: str) -> str:
    """``text`` for the log: itself with the debug switch on, else only its length ("<12 chars>")."""
    return repr(text) if _State.debug else f"<{len(text)} chars>"


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if not issubclass(kind, KeyboardInterrupt):
        logger.critical("uncaught exception", exc_info=(kind, exc, tb))
    (_State.sys_hook or sys.__excepthook__)(kind, exc, tb)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit and args.exc_value is not None:
        name = args.thread.name if args.thread is not None else "?"
        logger.critical("uncaught exception in thread %s", name,
                        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    (_State.thread_hook or threading.__excepthook__)(args)
