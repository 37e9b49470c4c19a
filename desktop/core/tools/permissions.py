"""What the person decided about tools, kept in ``Settings.tool_permissions`` per MCP server:
the command line they allowed to start, the tools they always allow, the tools switched off."""

from __future__ import annotations

from typing import Any

Permissions = dict[str, dict[str, Any]]


def start_approved(perms: Permissions, server: str, command_line: str) -> bool:
    """True when the person allowed ``server`` to start with exactly this command line."""
    return perms.get(server, {}).get("command") == command_line


def approve_start(perms: Permissions, server: str, command_line: str) -> None:
    """Remember that the person allowed ``server`` to start with ``command_line``."""
    perms.setdefault(server, {})["command"] = command_line


def always_allowed(perms: Permissions, server: str, tool: str) -> bool:
    """True when calls of ``tool`` on ``server`` run without asking."""
    return tool in perms.get(server, {}).get("always", [])


def allow_always(perms: Permissions, server: str, tool: str) -> None:
    """*Always allow this tool*: later calls of it on ``server`` run without asking."""
    always = perms.setdefault(server, {}).setdefault("always", [])
    if tool not in always:
        always.append(tool)


def tool_enabled(perms: Permissions, server: str, tool: str) -> bool:
    """False for a tool switched off in Settings -> Tools."""
    return tool not in perms.get(server, {}).get("disabled", [])


def set_tool_enabled(perms: Permissions, server: str, tool: str, enabled: bool) -> None:
    """Switch one tool of ``server`` on or off (off: the model is not told of it)."""
    disabled = perms.setdefault(server, {}).setdefault("disabled", [])
    if enabled and tool in disabled:
        disabled.remove(tool)
    elif not enabled and tool not in disabled:
        disabled.append(tool)


def forget_server(perms: Permissions, server: str) -> None:
    """Drop every decision about ``server`` (it was removed from mcp.json)."""
    perms.pop(server, None)
