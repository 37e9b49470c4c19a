"""The MCP servers of Settings -> Tools, for the window: their config, start (after the person
approved the command line), status, tools and calls, never blocking the GUI thread.

The servers run in :class:`desktop.core.tools.mcp_host.McpHost` (its own thread and event loop);
starting one and reading ``mcp.json`` go through a :class:`~desktop.services.background.Worker`,
and a call's result comes back through a queued signal.

Signals:
    servers_changed(): the list, a status or the tools changed (read :attr:`servers`, :meth:`status`).
    start_approval_needed(str server, str command_line): a stdio server must be allowed to start
        (answer with :meth:`approve_start`); nothing starts before that.
    problem(str): something to tell the person (a server that failed, a bad mcp.json).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings
from desktop.core.tools import permissions
from desktop.core.tools.mcp_config import ServerConfig, command_line, load_config, save_config_text
from desktop.core.tools.mcp_host import McpHost
from desktop.core.tools.specs import ERROR, ToolResult, ToolSpec
from desktop.services.background import Worker

logger = logging.getLogger(__name__)

Ready = Callable[[list[ToolSpec]], None]


class ToolService(QObject):
    """GUI-side handle of the MCP servers (see the module's signals)."""

    servers_changed = Signal()
    start_approval_needed = Signal(str, str)
    problem = Signal(str)
    _call_done = Signal(object, object)  # (callback, ToolResult) from the host's thread

    def __init__(self, paths: AppPaths, settings: Settings, token_for: Callable[[str], str | None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._paths = paths
        self.settings = settings
        self._host = McpHost(token_for=token_for)
        self._worker = Worker("cove-tools", self.problem.emit, self)
        self.servers: list[ServerConfig] = []
        self.config_problems: list[str] = []
        self._waiting: dict[str, list[tuple[Ready, Callable[[str], None]]]] = {}
        self._call_done.connect(self._deliver)

    # -- config ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Read mcp.json again (off the GUI thread); answers with servers_changed."""
        self._worker.submit(lambda: load_config(self._paths.mcp_config), self._loaded)

    def _loaded(self, result: tuple[list[ServerConfig], list[str]]) -> None:
        self.servers, self.config_problems = result
        for problem in self.config_problems:
            self.problem.emit(problem)
        self.servers_changed.emit()

    def config_text(self) -> str:
        """mcp.json as text for the editor (an empty config when there is none)."""
        path = self._paths.mcp_config
        return path.read_text(encoding="utf-8") if path.is_file() else '{\n  "mcpServers": {}\n}\n'

    def save_config(self, text: str, on_saved: Callable[[], None], on_error: Callable[[BaseException], None]) -> None:
        """Check and write mcp.json (off the GUI thread), then read it again."""
        def saved(_result: Any) -> None:
            self.reload()
            on_saved()
        self._worker.submit(lambda: save_config_text(self._paths.mcp_config, text), saved, on_error)

    def server(self, name: str) -> ServerConfig | None:
        """The configured server called ``name``."""
        return next((s for s in self.servers if s.name == name), None)

    def status(self, name: str) -> str:
        """'stopped', 'starting', 'running' or 'failed: …'."""
        return self._host.status(name)

    def tools(self, name: str) -> list[ToolSpec]:
        """The tools a running server offers (every one, switched off or not)."""
        return list(self._host.tools(name))

    def set_tool_enabled(self, server: str, tool: str, enabled: bool) -> None:
        """Switch one tool on or off (Settings -> Tools)."""
        permissions.set_tool_enabled(self.settings.tool_permissions, server, tool, enabled)
        self.servers_changed.emit()

    def enabled_tools(self, names: list[str]) -> list[ToolSpec]:
        """The switched-on tools of the running servers among ``names``."""
        perms = self.settings.tool_permissions
        return [spec for name in names for spec in self._host.tools(name)
                if permissions.tool_enabled(perms, name, spec.name)]

    # -- starting -----------------------------------------------------------------------------
    def ensure_started(self, names: list[str], on_ready: Ready, on_problem: Callable[[str], None]) -> None:
        """Start the servers among ``names`` that are not running (asking first where needed),
        then ``on_ready(their switched-on tools)``; a server that cannot start is reported to
        ``on_problem`` and left out."""
        pending = [n for n in names if self.status(n) != "running"]
        if not pending:
            on_ready(self.enabled_tools(names))
            return
        remaining = set(pending)

        def one_done(name: str) -> None:
            remaining.discard(name)
            if not remaining:
                on_ready(self.enabled_tools(names))

        for name in pending:
            self._start_one(name, lambda _specs, n=name: one_done(n),
                            lambda why, n=name: (on_problem(why), one_done(n)))

    def _start_one(self, name: str, ready: Ready, failed: Callable[[str], None]) -> None:
        server = self.server(name)
        if server is None:
            failed(f"There is no MCP server called '{name}' in mcp.json (Settings -> Tools).")
            return
        self._waiting.setdefault(name, []).append((ready, failed))
        if len(self._waiting[name]) > 1:
            return  # already starting or waiting for the person
        line = command_line(server)
        if server.kind == "stdio" and not permissions.start_approved(self.settings.tool_permissions, name, line):
            self.start_approval_needed.emit(name, line)
            return
        self._launch(server)

    @Slot(str, bool)
    def approve_start(self, name: str, approved: bool) -> None:
        """The person's answer to start_approval_needed."""
        server = self.server(name)
        if not approved or server is None:
            self._finish_start(name, None, f"MCP server '{name}' was not started (not allowed).")
            return
        permissions.approve_start(self.settings.tool_permissions, name, command_line(server))
        self._launch(server)

    def _launch(self, server: ServerConfig) -> None:
        self.servers_changed.emit()
        self._worker.submit(lambda: self._host.start(server), lambda specs: self._finish_start(server.name, specs, ""),
                            lambda exc: self._finish_start(server.name, None, str(exc)))

    def _finish_start(self, name: str, specs: list[ToolSpec] | None, problem: str) -> None:
        waiting = self._waiting.pop(name, [])
        self.servers_changed.emit()
        for ready, failed in waiting:
            if specs is None:
                failed(problem)
            else:
                ready(specs)

    def stop_server(self, name: str) -> None:
        """Stop a running server (off the GUI thread)."""
        self._worker.submit(lambda: self._host.stop(name), lambda _r: self.servers_changed.emit())

    # -- calls ------------------------------------------------------------------------------
    def call(self, server: str, tool: str, arguments: dict[str, Any], on_done: Callable[[ToolResult], None],
             timeout: float = 60.0) -> None:
        """Run a call on the host's thread; ``on_done(result)`` on the GUI thread (never raises)."""
        try:
            future: Future[ToolResult] = self._host.call_async(server, tool, arguments, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - reported as the call's result
            on_done(ToolResult("", tool, f"Error: {exc}", ERROR, server=server, arguments=arguments))
            return

        def finished(done: Future[ToolResult]) -> None:
            try:
                result = done.result()
            except Exception as exc:  # noqa: BLE001 - a call's failure is its result, for the model and the person
                result = ToolResult("", tool, f"Error: {exc}", ERROR, server=server, arguments=arguments)
            with contextlib.suppress(RuntimeError):  # the app is closing: nobody is left to tell
                self._call_done.emit(on_done, result)
        future.add_done_callback(finished)

    @Slot(object, object)
    def _deliver(self, callback: Callable[[ToolResult], None], result: ToolResult) -> None:
        callback(result)

    def shutdown(self) -> None:
        """Stop every server and the host's thread (bounded)."""
        self._worker.stop()
        self._host.close()
