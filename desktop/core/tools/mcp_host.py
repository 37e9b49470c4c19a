"""The MCP client: Cove's tools come from MCP servers, one long-lived session each.

One daemon thread ("cove-mcp") runs an asyncio loop. Each started server has one task that enters
the SDK's transport (stdio or Streamable HTTP) and ``ClientSession`` (anyio context managers: they
enter and leave on that one task), then waits to be stopped. The public methods are thread-safe
and blocking (``call_async`` returns a Future); each waits with a timeout: nothing blocks forever.

:meth:`McpHost.start` raises :class:`ToolServerError` (naming the server, with the end of a stdio
server's standard error: a temporary file, never Cove's console); :meth:`McpHost.call` returns an
ERROR result instead. A call that times out, or whose server died, breaks the session: it is
stopped (its process ended) and the next call starts it again, once. A line that is not MCP
fails the calls then waiting; the session goes on.

An HTTP server is reached only inside ``network_purpose(f"MCP server {name}", hosts=…)`` (its
host:port and that name's addresses), set in its session task and around each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desktop.core.system.network_guard import network_purpose
from desktop.core.tools.mcp_config import HTTP, ServerConfig, token_secret_name, url_host_port
from desktop.core.tools.specs import ERROR, OK, ToolResult, ToolSpec, content_text

if TYPE_CHECKING:  # the SDK itself is imported where it is used: importing it takes about a second
    import anyio
    import httpx2
    from mcp import ClientSession

logger = logging.getLogger(__name__)
CLIENT = ("Cove", "0.1.0")  # the client name and version the servers are told
STDERR_TAIL = 1500  # characters of a server's standard error quoted in a message
GRACE_S = 15.0  # beyond a coroutine's own timeout: the SDK's bounded teardown (stdin close, TERM, KILL)


class ToolServerError(Exception):
    """An MCP server could not be started or used; ``str()`` names the server."""

    def __init__(self, server: str, message: str) -> None:
        super().__init__(f"MCP server {server!r} {message}")
        self.server, self.message = server, message


class _ContextExecutor(ThreadPoolExecutor):
    """The loop's executor (lookups run there), running jobs in their submitter's context (its purpose)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


class _Stderr:
    """A stdio server's standard error: a temporary file the server appends to, read by its path."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="cove-mcp-", suffix=".stderr")
        os.close(fd)  # opened again for appending: the server's writes land at the end, whatever we read
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def tail(self) -> str:
        """The last lines written so far."""
        with contextlib.suppress(OSError), open(self.path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 4 * STDERR_TAIL))
            return handle.read().decode("utf-8", "replace")[-STDERR_TAIL:].strip()
        return ""

    def close(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@dataclass(eq=False)
class _Session:
    """One server's session, owned by the loop thread."""

    config: ServerConfig
    start_timeout: float
    headers: dict[str, str]
    status: str = "starting"
    tools: list[ToolSpec] = field(default_factory=list)
    session: ClientSession | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stderr: _Stderr | None = None
    hosts: frozenset[tuple[str, int]] = frozenset()
    waiting: set[anyio.CancelScope] = field(default_factory=set)
    garbage: str = ""
    http_error: str = ""  # the last HTTP error status an HTTP server answered
    broken: bool = False  # ended by a timeout or a dead connection: the next call starts it again

    def with_stderr(self, message: str) -> str:
        """``message``, with the end of a stdio server's standard error when it wrote any."""
        tail = self.stderr.tail() if self.stderr else ""
        return f"{message}: {tail}" if tail else message

    def purpose(self) -> contextlib.AbstractContextManager[None]:
        """An HTTP server's network purpose, limited to its hosts (nothing for stdio)."""
        purpose = f"MCP server {self.config.name}"
        return network_purpose(purpose, hosts=self.hosts) if self.config.kind == HTTP else contextlib.nullcontext()

    async def on_response(self, response: httpx2.Response) -> None:
        """httpx's hook: remember an HTTP error status (the SDK's error does not say it)."""
        if response.status_code >= 400:
            hint = " (is its bearer token right? see Settings → Tools)" if response.status_code in (401, 403) else ""
            self.http_error = f"HTTP {response.status_code} {response.reason_phrase}".strip() + hint

    async def on_message(self, message: Any) -> None:
        """The SDK's handler: a transport fault (a line that is not JSON-RPC) fails the waiting calls."""
        if isinstance(message, Exception):
            self.garbage = _describe(message)
            logger.warning("MCP server %r sent something that is not MCP: %s", self.config.name, self.garbage)
            for scope in list(self.waiting):
                scope.cancel()


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong (the first problem of a validation error)."""
    exc = _leaf(exc)
    if callable(getattr(exc, "errors", None)) and hasattr(exc, "error_count") and exc.errors():  # pydantic's
        first, more = exc.errors()[0], exc.error_count() - 1
        where = ".".join(str(part) for part in first.get("loc", ())) or "the message"
        return f"{where}: {first.get('msg', 'invalid')}" + (f" (and {more} more problems)" if more else "")
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


class McpHost:
    """The MCP servers of this session (see the module's text). ``token_for(secret_name)`` returns an
    HTTP server's bearer token (from the keyring) or None."""

    def __init__(self, token_for: Callable[[str], str | None] | None = None) -> None:
        self._token_for = token_for
        self._sessions: dict[str, _Session] = {}
        self._restarting: dict[str, asyncio.Lock] = {}  # used in the loop only
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("this McpHost is closed")
            if self._loop is None:
                self._loop = loop = asyncio.new_event_loop()
                loop.set_default_executor(_ContextExecutor(4, thread_name_prefix="cove-mcp-lookup"))
                self._thread = threading.Thread(target=loop.run_forever, name="cove-mcp", daemon=True)
                self._thread.start()
            return self._loop

    def _submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        loop = self._ensure_loop()  # first: a coroutine made for a closed host would never be awaited
        return asyncio.run_coroutine_threadsafe(job(*args), loop)

    def start(self, server: ServerConfig, timeout: float = 20) -> list[ToolSpec]:
        """Start ``server`` (stopping an earlier session of that name) and return its tools;
        ToolServerError when it does not start, answer the handshake or list its tools within ``timeout``."""
        import mcp.client.streamable_http  # noqa: F401 - the SDK's first import (a second) here, not on the loop

        if not server.enabled:
            raise ToolServerError(server.name, "is disabled in mcp.json")
        headers = dict(server.headers)
        if server.kind == HTTP and server.bearer_token_in_keyring:
            token = self._token_for(token_secret_name(server)) if self._token_for else None
            if not token:
                raise ToolServerError(server.name, "needs a bearer token: set it in Settings → Tools")
            headers["Authorization"] = f"Bearer {token}"
        future = self._submit(self._start, _Session(server, timeout, headers))
        try:
            return future.result(timeout + GRACE_S)
        except FutureTimeout:
            future.cancel()
            raise ToolServerError(server.name, f"did not start within {timeout:g} s") from None

    def call(self, server_name: str, tool: str, arguments: dict[str, Any], timeout: float = 60,
             call_id: str = "") -> ToolResult:
        """Run ``tool`` on the server; never raises (an ERROR result says what went wrong)."""
        begun = time.monotonic()
        restart = getattr(self._sessions.get(server_name), "start_timeout", 0.0)  # a broken one starts again
        try:
            future = self.call_async(server_name, tool, arguments, timeout, call_id)
            return future.result(timeout + GRACE_S + restart)
        except FutureTimeout:
            future.cancel()
            return self._error(call_id, tool, arguments, server_name, f"timed out after {timeout:g} s", begun)
        except Exception as exc:  # noqa: BLE001 - a tool call reports, it does not raise (a closed host too)
            return self._error(call_id, tool, arguments, server_name, _describe(exc), begun)

    def call_async(self, server_name: str, tool: str, arguments: dict[str, Any], timeout: float = 60,
                   call_id: str = "") -> Future[ToolResult]:
        """:meth:`call` without waiting: a Future of its ToolResult (never an exception). Its callbacks run on
        the cove-mcp thread: hand the result on (a Qt signal), never wait for this host there."""
        return self._submit(self._call, server_name, tool, dict(arguments), timeout, call_id)

    def stop(self, server_name: str) -> None:
        """Stop one server (its process ends); a no-op for one not started."""
        if self._loop is not None:
            with contextlib.suppress(FutureTimeout, RuntimeError):  # RuntimeError: closed meanwhile
                self._submit(self._stop, server_name).result(GRACE_S)

    def close(self) -> None:
        """Stop every server, end the loop and join its thread; idempotent."""
        with self._lock:
            loop, thread, self._closed = self._loop, self._thread, True
            self._loop = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(FutureTimeout):
            asyncio.run_coroutine_threadsafe(self._stop_all(), loop).result(GRACE_S + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(GRACE_S)
        if not thread.is_alive():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def status(self, server_name: str) -> str:
        """'stopped', 'starting', 'running' or 'failed: why'."""
        return getattr(self._sessions.get(server_name), "status", "stopped")

    def tools(self, server_name: str) -> list[ToolSpec]:
        """The tools the server listed when it started ([] when it is not running)."""
        session = self._sessions.get(server_name)
        return list(session.tools) if session and session.status == "running" else []

    def allowed_hosts(self, server_name: str) -> frozenset[tuple[str, int]]:
        """The (host, port) pairs an HTTP server's session may reach (empty for stdio or not started)."""
        return getattr(self._sessions.get(server_name), "hosts", frozenset())

    def _error(self, call_id: str, tool: str, arguments: dict[str, Any], server: str, message: str,
               begun: float) -> ToolResult:
        text = message if message.startswith("MCP server") else f"MCP server {server!r}: {message}"
        return ToolResult(call_id, tool, text, ERROR, time.monotonic() - begun, server, arguments)

    async def _start(self, session: _Session) -> list[ToolSpec]:
        await self._stop(session.config.name)
        self._sessions[session.config.name] = session
        ready: asyncio.Future[list[ToolSpec]] = asyncio.get_running_loop().create_future()
        session.task = asyncio.get_running_loop().create_task(self._run(session, ready),
                                                              name=f"mcp-{session.config.name}")
        return await asyncio.shield(ready)

    async def _stop(self, server_name: str) -> None:
        session = self._sessions.pop(server_name, None)
        if session is not None:
            await self._retire(session, "stopped", wait=True)

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._stop(name) for name in list(self._sessions)), return_exceptions=True)

    async def _retire(self, session: _Session, status: str, wait: bool = False, broken: bool = False) -> None:
        """End a session's task (it tears the transport down); ``status`` is what it then shows."""
        session.status, session.broken = status, broken
        session.stop.set()
        if wait and session.task is not None:
            done, _ = await asyncio.wait({session.task}, timeout=GRACE_S)
            if not done:
                session.task.cancel()

    async def _run(self, session: _Session, ready: asyncio.Future[list[ToolSpec]]) -> None:
        """The session's task: open, hand the tools to ``ready``, wait for stop, close."""
        from mcp import ClientSession, Implementation

        name, info = session.config.name, Implementation(name=CLIENT[0], version=CLIENT[1])
        session.stderr = _Stderr() if session.config.kind != HTTP else None
        try:
            async with self._transport(session) as streams, \
                    ClientSession(*streams, message_handler=session.on_message, client_info=info) as client:
                try:
                    session.tools = await self._handshake(session, client)
                except Exception as exc:  # noqa: BLE001 - any failure at start is reported the same way
                    ready.set_exception(await self._start_error(session, exc))
                    return
                session.session, session.status = client, "running"
                ready.set_result(list(session.tools))
                await session.stop.wait()
        except Exception as exc:  # noqa: BLE001 - the transport's own failures, at start or at teardown
            if not ready.done():
                what = "could not be reached" if session.config.kind == HTTP else "could not be started"
                message = session.with_stderr(f"{what}: {_describe(exc)}")
                session.status = f"failed: {message}"
                ready.set_exception(ToolServerError(name, message))
            logger.info("MCP server %r ended: %s", name, _describe(exc))
        finally:
            session.session = None
            if not ready.done():
                ready.set_exception(ToolServerError(name, "was stopped while starting"))
            if session.status in ("running", "starting"):
                session.status = "stopped"
            if session.stderr is not None:
                session.stderr.close()

    async def _handshake(self, session: _Session, client: ClientSession) -> list[ToolSpec]:
        """initialize and list every page of tools, within the start timeout."""
        import anyio
        import mcp_types as types

        with anyio.fail_after(session.start_timeout):
            await client.initialize()
            specs: list[ToolSpec] = []
            cursor: str | None = None
            for _ in range(50):  # pages at most: a server's paging cannot go on forever
                page = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                listing = await client.list_tools(params=page)
                specs += [ToolSpec(tool.name, tool.description or "", tool.input_schema or ToolSpec("").parameters,
                                   session.config.name) for tool in listing.tools]
                if not (cursor := listing.next_cursor):
                    break
            return specs

    async def _start_error(self, session: _Session, exc: BaseException) -> ToolServerError:
        """The message for a failed start; its status becomes 'failed: …'."""
        from mcp_types import CONNECTION_CLOSED

        exc = _leaf(exc)
        if isinstance(exc, TimeoutError):
            message = session.with_stderr(f"did not answer within {session.start_timeout:g} s at start")
        elif session.http_error:
            message = f"answered {session.http_error} at start"
        elif getattr(exc, "code", None) == CONNECTION_CLOSED:  # an MCPError
            await asyncio.sleep(0.2)  # its last words on stderr
            what = "closed the connection" if session.config.kind == HTTP else "exited"
            message = session.with_stderr(f"{what} at start")
        else:
            message = session.with_stderr(f"failed at start: {_describe(exc)}")
        session.status = f"failed: {message}"
        return ToolServerError(session.config.name, message)

    @contextlib.asynccontextmanager
    async def _transport(self, session: _Session) -> AsyncIterator[Any]:
        """The SDK's transport (its stream pair). HTTP: in the server's purpose, limited to its host:port and
        that name's addresses, over our own httpx client (the headers; no proxy from the environment)."""
        import httpx2
        from mcp import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        config = session.config
        if config.kind != HTTP:
            params = StdioServerParameters(command=config.command, args=list(config.args),
                                           env=dict(config.env) or None, cwd=config.cwd or None)
            async with stdio_client(params, errlog=session.stderr.file if session.stderr else None) as streams:
                yield streams
            return
        host, port = url_host_port(config.url)
        session.hosts = frozenset({(host, port)})
        with session.purpose():
            lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            infos = await asyncio.wait_for(lookup, session.start_timeout)  # a name lookup can hang too
        session.hosts |= {(str(info[4][0]).lower(), port) for info in infos}
        with session.purpose():
            async with httpx2.AsyncClient(headers=session.headers, trust_env=False,
                                          timeout=httpx2.Timeout(10.0, read=300.0),
                                          event_hooks={"response": [session.on_response]}) as client, \
                    streamable_http_client(config.url, http_client=client) as streams:
                yield streams

    async def _ensure_running(self, server_name: str) -> _Session:
        """The running session, started again (once) when it broke; ToolServerError otherwise."""
        async with self._restarting.setdefault(server_name, asyncio.Lock()):
            session = self._sessions.get(server_name)
            if session is None:
                raise ToolServerError(server_name, "is not started")
            if session.session is not None and session.status == "running":
                return session
            if not session.broken:
                raise ToolServerError(server_name, f"is not running ({session.status})")
            fresh = _Session(session.config, session.start_timeout, session.headers)
            await self._start(fresh)
            return fresh

    async def _call(self, server_name: str, tool: str, arguments: dict[str, Any], timeout: float,
                    call_id: str) -> ToolResult:
        import anyio

        begun = time.monotonic()
        try:
            session = await self._ensure_running(server_name)
        except ToolServerError as exc:
            return self._error(call_id, tool, arguments, server_name, str(exc), begun)
        client = session.session
        assert client is not None
        text, status = "", OK
        with anyio.move_on_after(timeout) as scope:
            session.waiting.add(scope)
            try:
                text, status = await self._call_once(session, client, tool, arguments)
            finally:
                session.waiting.discard(scope)
        if scope.cancelled_caught:
            text, status = await self._interrupted(session, tool, timeout)
        return ToolResult(call_id, tool, text, status, time.monotonic() - begun, server_name, arguments)

    async def _call_once(self, session: _Session, client: ClientSession, tool: str,
                         arguments: dict[str, Any]) -> tuple[str, str]:
        """(text, status) of one tools/call; a dead connection breaks the session."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        name = session.config.name
        session.http_error = ""
        try:
            with session.purpose():  # the SDK sends each request in its sender's context
                result = await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED or exc.message == "Session terminated":  # HTTP: a restarted server
                await asyncio.sleep(0.2)  # its last words on stderr
                message = session.with_stderr(f"stopped during the call to {tool!r}")
                await self._retire(session, f"failed: {message}", broken=True)
                return f"MCP server {name!r} {message}", ERROR
            why = f"{exc.message} ({session.http_error})" if session.http_error else exc.message
            return f"MCP server {name!r} refused the call to {tool!r}: {why}", ERROR
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError among them
            return f"MCP server {name!r} sent a result Cove cannot read for {tool!r}: {_describe(exc)}", ERROR
        except Exception as exc:  # noqa: BLE001 - transport failures (HTTP errors, a reset connection)
            message = f"failed during the call to {tool!r}: {_describe(exc)}"
            await self._retire(session, f"failed: {message}", broken=True)
            return f"MCP server {name!r} {message}", ERROR
        return content_text(result.content, result.structured_content), (ERROR if result.is_error else OK)

    async def _interrupted(self, session: _Session, tool: str, timeout: float) -> tuple[str, str]:
        """A call cut short: by a line that is not MCP, or by its timeout (which breaks the session)."""
        name = session.config.name
        if session.garbage:
            garbage, session.garbage = session.garbage, ""
            return f"MCP server {name!r} sent something that is not MCP during the call to {tool!r}: {garbage}", ERROR
        message = f"the call to {tool!r} timed out after {timeout:g} s"
        await self._retire(session, f"failed: {message}; it starts again on the next call", broken=True)
        return f"MCP server {name!r}: {message}", ERROR
