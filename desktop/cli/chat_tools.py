"""Tools for ``cove chat``: ``--tools SERVER[,SERVER]`` starts those MCP servers of mcp.json
(after the person allowed each command line, asked on the terminal), ``--require-tool NAME``
makes the first round call that tool, and each call is allowed on the terminal (*y* once, *a*
always, *n* deny) unless ``--allow-tools`` grants both the starts and the calls (for scripts).
``cove tools [--json]`` lists the configured servers and their tools."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from desktop.cli.output import note, table
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings, load_settings, save_settings
from desktop.core.tools import permissions
from desktop.core.tools.mcp_config import ServerConfig, command_line, load_config
from desktop.core.tools.mcp_host import McpHost
from desktop.core.tools.specs import ToolCall, ToolResult, ToolSpec
from desktop.core.tools.tool_rounds import denied_result, unavailable_result

Ask = Callable[[str], str]


def add_tool_arguments(chat: argparse.ArgumentParser) -> None:
    """``cove chat``'s tool options."""
    chat.add_argument("--tools", default="", metavar="SERVER[,SERVER]",
                      help="let the model call the tools of these MCP servers (names in mcp.json)")
    chat.add_argument("--require-tool", default="", metavar="NAME",
                      help="the answer must call this tool first (sampling is constrained to the call)")
    chat.add_argument("--allow-tools", action="store_true",
                      help="start the servers and run every call without asking (for scripts)")


def ask_terminal(question: str) -> str:
    """Ask on the terminal; '' when there is nobody to answer (no terminal, end of input)."""
    source = sys.stdin
    if not source.isatty():
        try:
            source = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            return ""
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        return source.readline().strip().lower()
    finally:
        if source is not sys.stdin:
            source.close()


class CliTools:
    """The MCP servers of one ``cove chat``, their tools, and the person's answers on the terminal."""

    def __init__(self, paths: AppPaths, allow_all: bool, ask: Ask = ask_terminal) -> None:
        self._paths = paths
        self._allow_all = allow_all
        self._ask = ask
        self.settings: Settings = load_settings(paths.settings_file)
        self.host = McpHost()
        self.specs: list[ToolSpec] = []

    def start(self, names: list[str]) -> str:
        """Start the named servers (asking first); '' when every one runs, else the problem."""
        servers, problems = load_config(self._paths.mcp_config)
        for problem in problems:
            note(f"note: {problem}")
        perms = self.settings.tool_permissions
        for name in names:
            server = next((s for s in servers if s.name == name), None)
            if server is None:
                return f"there is no MCP server '{name}' in {self._paths.mcp_config}"
            if not self._may_start(server):
                return f"MCP server '{name}' was not started (not allowed)"
            try:
                specs = self.host.start(server)
            except Exception as exc:  # noqa: BLE001 - the server's problem, told to the person
                return str(exc)
            self.specs += [s for s in specs if permissions.tool_enabled(perms, name, s.name)]
        return ""

    def _may_start(self, server: ServerConfig) -> bool:
        line = command_line(server)
        perms = self.settings.tool_permissions
        if server.kind != "stdio" or permissions.start_approved(perms, server.name, line) or self._allow_all:
            return True
        answer = self._ask(f"Start MCP server '{server.name}' with this command?\n  {line}\n[y/N] ")
        if answer not in ("y", "yes"):
            return False
        permissions.approve_start(perms, server.name, line)
        self._save()
        return True

    def run_call(self, call: ToolCall) -> ToolResult:
        """Ask about ``call`` (unless allowed), run it, and return its result (never raises)."""
        spec = next((s for s in self.specs if s.name == call.name), None)
        if spec is None:
            return unavailable_result(call, f"there is no tool called {call.name!r} here")
        perms = self.settings.tool_permissions
        if not (self._allow_all or permissions.always_allowed(perms, spec.server, spec.name)):
            answer = self._ask(f"Run tool {spec.name} ({spec.server}) with {call.arguments_json()}?\n"
                               "[y] allow once, [a] always allow this tool, [N] deny: ")
            if answer in ("a", "always"):
                permissions.allow_always(perms, spec.server, spec.name)
                self._save()
            elif answer not in ("y", "yes"):
                return denied_result(call, spec.server)
        result = self.host.call(spec.server, spec.name, call.arguments)
        return ToolResult(call.id, call.name, result.content, result.status, result.duration_s, spec.server,
                          call.arguments)

    def _save(self) -> None:
        saved = load_settings(self._paths.settings_file)
        saved.tool_permissions = self.settings.tool_permissions
        save_settings(self._paths.settings_file, saved)

    def close(self) -> None:
        """Stop every server this command started."""
        self.host.close()


def cmd_tools(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """``cove tools``: the configured MCP servers and their tools (each server started to ask it,
    after the person allowed it; ``--allow-tools`` for scripts)."""
    out = out or sys.stdout
    servers, problems = load_config(paths.mcp_config)
    for problem in problems:
        note(f"note: {problem}")
    tools = CliTools(paths, allow_all=args.allow_tools)
    listed = []
    try:
        for server in servers:
            entry = {"name": server.name, "kind": server.kind, "command": command_line(server), "status": "running",
                     "tools": []}
            problem = tools.start([server.name])
            if problem:
                entry["status"] = f"failed: {problem}"
            else:
                perms = tools.settings.tool_permissions
                entry["tools"] = [{"name": s.name, "description": s.description, "parameters": s.parameters,
                                   "enabled": permissions.tool_enabled(perms, s.server, s.name)}
                                  for s in tools.host.tools(server.name)]
            listed.append(entry)
    finally:
        tools.close()
    if args.json:
        out.write(json.dumps({"config": str(paths.mcp_config), "servers": listed}, ensure_ascii=False, indent=2) + "\n")
        return 0
    if not servers:
        out.write(f"No MCP servers configured. Add them to {paths.mcp_config} (the mcpServers shape of "
                  "Claude Desktop).\n")
        return 0
    rows = [[e["name"], e["kind"], e["status"], ", ".join(t["name"] + ("" if t["enabled"] else " (off)")
                                                         for t in e["tools"])] for e in listed]
    table([["SERVER", "KIND", "STATUS", "TOOLS"], *rows], out)
    return 1 if any(e["status"] != "running" for e in listed) else 0


def add_tools_arguments(parser: argparse.ArgumentParser) -> None:
    """``cove tools``'s options."""
    parser.add_argument("--json", action="store_true", help="print the servers and their tools as JSON")
    parser.add_argument("--allow-tools", action="store_true", help="start the servers without asking")
