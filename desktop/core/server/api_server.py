"""Cove's OpenAI-compatible API server: listening, access rules, and its queue.

:class:`ApiServer` listens (loopback unless the person chose otherwise, and then only with an API
key), answers on a threaded HTTP server, and queues generation jobs fairly for a
:class:`~desktop.core.server.jobs.Dispatcher` that runs them on the model's thread. The same
server runs headless (``cove serve``) and inside the window (Settings -> Server).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

from desktop.core.server.api_errors import ApiError
from desktop.core.server.http_api import ApiHandler
from desktop.core.server.jobs import Dispatcher, Executor, FairQueue, Job
from desktop.core.system.settings import GenerationSettings

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8844
LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The server cannot start; the message is for a person."""


@dataclass
class ServerConfig:
    """How the server listens and what it allows."""

    host: str = LOOPBACK
    port: int = DEFAULT_PORT        # 0: any free port
    api_key: str = ""
    cors_origins: list[str] = field(default_factory=list)
    max_body: int = 8 * 1024 * 1024
    queue_limit: int = 16
    request_timeout_s: float = 600.0
    defaults: GenerationSettings = field(default_factory=GenerationSettings)


class Catalog(Protocol):
    """The models the server serves."""

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models`` entries (each with an ``id``)."""

    def check(self, model: str, embedding: bool = False) -> str:
        """The served id for ``model``, or raise an :class:`ApiError` (404 unknown, 400 wrong kind)."""

    def unknown(self, model: str) -> ApiError:
        """The 404 for ``model``."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str) -> None:
    """Refuse to listen beyond this computer without an API key."""
    if not is_loopback(host) and not api_key:
        raise ServerStartError(f"Listening on {host} lets other computers in: set an API key first "
                               "(--api-key-file, or Settings -> Server), or listen on 127.0.0.1.")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse lookup of the host name (no DNS for a local server)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class ApiServer:
    """The API server over one executor. ``on_activity(job, running)`` hears each request begin
    and end (on the dispatcher thread)."""

    def __init__(self, config: ServerConfig, catalog: Catalog, execute: Executor,
                 on_activity: Any = None) -> None:
        check_bind(config.host, config.api_key)
        self.config, self.catalog = config, catalog
        self.jobs = FairQueue(config.queue_limit)
        self._dispatcher = Dispatcher(self.jobs, execute, on_activity)
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use (``http://host:port/v1``)."""
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on."""
        if self._http is None:
            return self.config.host, self.config.port
        return self.config.host, int(self._http.server_address[1])

    @property
    def current(self) -> Job | None:
        """The job being answered now, if any."""
        return self._dispatcher.current

    def start(self) -> ApiServer:
        """Listen and start serving (on threads of its own); raises :class:`ServerStartError`."""
        try:
            self._http = _HttpServer((self.config.host, self.config.port), ApiHandler)
        except OSError as exc:
            raise ServerStartError(f"Cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
                                   + (" (another program uses that port; choose another)" if exc.errno == 98 else "")
                                   + ".") from exc
        self._http.api = self
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="cove-api-http", daemon=True)
        self._thread.start()
        logger.info("API server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop listening, cancel what runs and refuse what waits (bounded waits)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self._dispatcher.stop()
        if self._thread is not None:
            self._thread.join(5)
        logger.info("API server stopped")
