"""The MCP servers whose tools models may call: ``mcp.json`` in Cove's config folder.

The shape is the one Claude Desktop, LM Studio and Cursor use, so a person can paste theirs::

    {"mcpServers": {
        "weather": {"command": "uvx", "args": ["weather-mcp"], "env": {"UNITS": "metric"}},
        "notes": {"url": "http://127.0.0.1:8000/mcp", "headers": {"X-Team": "me"},
                  "bearerTokenInKeyring": true}}}

An entry with ``command`` is a local program Cove starts and talks to over its standard input
and output (stdio); one with ``url`` is a server reached over Streamable HTTP. Keys other apps
add (``alwaysAllow``, ``timeout``…) are ignored; ``"disabled": true`` keeps an entry without
starting it; VS Code's ``"servers"`` in place of ``"mcpServers"`` is read too.

A bearer token is never written into mcp.json: ``"bearerTokenInKeyring": true`` (Cove's own key)
makes Cove send ``Authorization: Bearer <token>``, the token kept in the system keyring under
:func:`token_secret_name` (Settings → Tools asks for it; the host gets it through a callable).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from desktop.core.system.atomic import write_text_atomic

STDIO, HTTP = "stdio", "http"
TOKEN_KEY = "bearerTokenInKeyring"
_HTTP_TYPES = {"http", "streamable-http", "streamablehttp", "streamable_http"}
MAX_NAME = 64


@dataclass(frozen=True)
class ServerConfig:
    """One server of mcp.json: a command to start (``kind`` stdio) or a URL to reach (``kind`` http)."""

    name: str
    kind: str = STDIO
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, hash=False)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    bearer_token_in_keyring: bool = False
    enabled: bool = True
    cwd: str = ""


class _Bad(ValueError):
    """One entry's problem (the message names the key, the caller names the server)."""


def _strings(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _Bad(f'"{key}" must be an object of text values, like {{"NAME": "value"}}')
    return dict(value)


def _args(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise _Bad('"args" must be a list of text values, like ["-y", "some-server"]')
    return tuple(value)


def url_host_port(url: str) -> tuple[str, int]:
    """The host and port a server URL connects to (80 and 443 by default); ValueError if it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _Bad(f'"url" is not a valid URL ({exc})') from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Bad(f'"url" must be an http:// or https:// address with a host, not {url!r}')
    return parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def _flag(value: Any, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Bad(f'"{key}" must be true or false')
    return value


def _entry(name: str, entry: Any) -> ServerConfig:
    """One server's entry checked and read; raises _Bad."""
    if not isinstance(entry, dict):
        raise _Bad('its entry must be an object with "command" or "url"')
    url = entry.get("url", entry.get("serverUrl"))
    command = entry.get("command")
    kind = str(entry.get("type") or "").strip().lower()
    if kind == "sse":
        raise _Bad('the SSE transport is not supported; use the server\'s Streamable HTTP address ("type": "http")')
    if (command is None) == (url is None):
        raise _Bad('it needs either "command" (a program to start) or "url" (a server to reach), not both')
    if kind and kind != STDIO and kind not in _HTTP_TYPES:
        raise _Bad(f'"type" must be "stdio" or "http", not {kind!r}')
    enabled = not _flag(entry.get("disabled"), "disabled")
    if command is not None:
        if kind in _HTTP_TYPES:
            raise _Bad('"type" says http but the entry has a "command" and no "url"')
        if not isinstance(command, str) or not command.strip():
            raise _Bad('"command" must be the program to start, as text')
        cwd = entry.get("cwd") or ""
        if not isinstance(cwd, str):
            raise _Bad('"cwd" must be a folder, as text')
        return ServerConfig(name, STDIO, command.strip(), _args(entry.get("args")), _strings(entry.get("env"), "env"),
                            enabled=enabled, cwd=cwd)
    if kind == STDIO:
        raise _Bad('"type" says stdio but the entry has a "url" and no "command"')
    if not isinstance(url, str):
        raise _Bad('"url" must be an http:// or https:// address, as text')
    url_host_port(url)
    return ServerConfig(name, HTTP, url=url, headers=_strings(entry.get("headers"), "headers"),
                        bearer_token_in_keyring=_flag(entry.get(TOKEN_KEY), TOKEN_KEY), enabled=enabled)


def _bad_name(name: str) -> str:
    if not name.strip():
        return "a server has an empty name"
    if len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        return f"server name {name[:MAX_NAME]!r} must be one line of at most {MAX_NAME} characters"
    return ""


def _parse(text: str, source: str) -> tuple[list[ServerConfig], list[str]]:
    """Servers and problems (each naming ``source`` and the server) of mcp.json's text."""
    if not text.strip():
        return [], []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]
    servers_key = "mcpServers" if isinstance(data, dict) and "mcpServers" in data else "servers"
    table = data.get(servers_key) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        return [], [f'{source} must be an object with an "mcpServers" object, like {{"mcpServers": {{"name": …}}}}']
    servers: list[ServerConfig] = []
    problems: list[str] = []
    for name, entry in table.items():
        problem = _bad_name(name)
        if problem:
            problems.append(f"{source}: {problem}")
            continue
        try:
            servers.append(_entry(name, entry))
        except _Bad as exc:
            problems.append(f"{source}: server {name!r}: {exc}")
    return servers, problems


def load_config(path: Path) -> tuple[list[ServerConfig], list[str]]:
    """The servers of ``path`` and the problems met reading it; a missing file has no servers. A bad
    entry is left out with a problem naming it; the good ones still load."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path} cannot be read: {exc}"]
    return _parse(text, str(path))


def parse_config_text(text: str) -> list[ServerConfig]:
    """Check text pasted into Settings → Tools; its servers, or ValueError listing every problem."""
    servers, problems = _parse(text, "mcp.json")
    if problems:
        raise ValueError("\n".join(problems))
    return servers


def save_config_text(path: Path, text: str) -> list[ServerConfig]:
    """Check ``text`` (ValueError as :func:`parse_config_text`), then write it atomically, as the person wrote it."""
    servers = parse_config_text(text)
    write_text_atomic(path, text if text.endswith("\n") else text + "\n")
    return servers


def command_line(server: ServerConfig) -> str:
    """What starting ``server`` runs, shell-quoted (its environment first, as a shell writes it), shown
    to the person before the first start; for an HTTP server, the address Cove connects to."""
    if server.kind == HTTP:
        return server.url
    env = [f"{key}={shlex.quote(value)}" for key, value in server.env.items()]
    prefix = f"cd {shlex.quote(server.cwd)} && " if server.cwd else ""
    return prefix + " ".join([*env, shlex.join([server.command, *server.args])])


def http_hosts(servers: list[ServerConfig]) -> list[tuple[str, int, str]]:
    """(host, port, server name) of every enabled HTTP server: what the privacy pane lists as allowed."""
    return [(*url_host_port(server.url), server.name) for server in servers if server.kind == HTTP and server.enabled]


def token_secret_name(server: ServerConfig | str) -> str:
    """The keyring name an HTTP server's bearer token is kept under."""
    return f"mcp-token:{server if isinstance(server, str) else server.name}"
