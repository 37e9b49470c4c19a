"""``cove serve``: Cove's OpenAI-compatible API, headless, over the library's models.

It listens on 127.0.0.1 unless ``--host`` says otherwise, and beyond this computer only with an
API key (``--api-key-file``: the key is the file's first line). ``--model`` serves one model
(else every library model, the last used loaded first, another loaded when a request names
it). It prints the URL it listens on, then serves until Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from desktop.cli.output import fail, note
from desktop.core.library.model_library import ModelLibrary
from desktop.core.server.api_server import DEFAULT_PORT, LOOPBACK, ApiServer, ServerConfig, ServerStartError
from desktop.core.server.jobs import Job
from desktop.core.server.model_host import LibraryCatalog, ModelHost
from desktop.core.server.model_ids import served_id
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import load_settings


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """The arguments of ``cove serve``."""
    serve.add_argument("--host", default=LOOPBACK,
                       help=f"address to listen on (default {LOOPBACK}: this computer only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--api-key-file", type=Path, help="require this API key (the file's first line); needed "
                       "to listen beyond 127.0.0.1")
    serve.add_argument("--model", help="serve only this model (a library name or a GGUF file)")
    serve.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from ORIGIN call the API (repeatable; '*' for any)")
    serve.add_argument("--queue-limit", type=int, default=16, help="requests that may wait (more get 429)")
    serve.add_argument("--timeout", type=float, default=600.0, help="seconds a request may take, waiting included")
    serve.add_argument("--ctx", type=int, default=None, help="context length in tokens")
    serve.add_argument("--threads", type=int, default=None)


def read_key(path: Path | None) -> str:
    """The API key in ``path`` (its first line), or '' without a file."""
    if path is None:
        return ""
    try:
        key = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise ServerStartError(f"Cannot read the API key file {path}: {exc.strerror or exc}.") from exc
    if not key or not key[0].strip():
        raise ServerStartError(f"The API key file {path} is empty.")
    return key[0].strip()


def _first_model(args: argparse.Namespace, paths: AppPaths, settings: Any) -> Path | None:
    library = ModelLibrary(paths)
    if args.model:
        entry = LibraryCatalog(paths).find(args.model) or library.find(args.model)
        return entry.path if entry else (Path(args.model) if Path(args.model).is_file() else None)
    entry = library.default(settings.last_model)
    return entry.path if entry else None


def cmd_serve(args: argparse.Namespace, paths: AppPaths) -> int:
    """Serve until interrupted."""
    settings = load_settings(paths.settings_file)
    first = _first_model(args, paths, settings)
    if first is None:
        return fail(f"no model {args.model!r} in the library" if args.model else
                    "no model to serve: install the starter model or import one (cove models import FILE)")
    catalog = LibraryCatalog(paths, only=first if args.model else None)
    gen = settings.generation
    host = ModelHost(paths, catalog, n_ctx=args.ctx or gen.n_ctx, n_threads=args.threads or gen.n_threads)
    try:
        config = ServerConfig(args.host, args.port, read_key(args.api_key_file), list(args.cors),
                              queue_limit=max(1, args.queue_limit), request_timeout_s=args.timeout, defaults=gen)
        server = ApiServer(config, catalog, host).start()
    except ServerStartError as exc:
        return fail(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.jobs.put(Job(("load", served_id(first)), client="cove"))
    print(f"Cove API listening on {server.url}", flush=True)
    note(f"serving {', '.join(m['id'] for m in catalog.models())}; Ctrl+C stops")
    while not stop.wait(0.5):
        pass
    server.stop()
    sys.stdout.flush()
    return 0
