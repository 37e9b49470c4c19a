"""mcp.json: the shape Claude Desktop, LM Studio and Cursor use; clear problems; atomic saves."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from desktop.core.system.paths import app_paths
from desktop.core.tools.mcp_config import (
    HTTP,
    STDIO,
    ServerConfig,
    command_line,
    http_hosts,
    load_config,
    parse_config_text,
    save_config_text,
    token_secret_name,
)

CLAUDE_DESKTOP = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/My Documents"],
      "env": {"LOG_LEVEL": "debug"},
      "alwaysAllow": ["read_file"]
    },
    "notes": {
      "url": "http://127.0.0.1:8000/mcp",
      "headers": {"X-Team": "me"},
      "bearerTokenInKeyring": true
    }
  }
}"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_config_file_lives_in_the_config_folder(tmp_path: Path) -> None:
    paths = app_paths(tmp_path)
    assert paths.mcp_config == paths.config_dir / "mcp.json"
    assert paths.mcp_config.parent == paths.settings_file.parent


def test_a_pasted_claude_desktop_config_loads(tmp_path: Path) -> None:
    servers, problems = load_config(write(tmp_path, CLAUDE_DESKTOP))
    assert problems == []
    files, notes = servers
    assert files == ServerConfig("filesystem", STDIO, "npx",
                                 ("-y", "@modelcontextprotocol/server-filesystem", "/Users/me/My Documents"),
                                 {"LOG_LEVEL": "debug"})
    assert (notes.kind, notes.url, notes.headers, notes.bearer_token_in_keyring) == (
        HTTP, "http://127.0.0.1:8000/mcp", {"X-Team": "me"}, True)
    assert notes.command == "" and files.url == "" and files.enabled and notes.enabled


def test_a_missing_or_empty_file_has_no_servers_and_no_problems(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.json") == ([], [])
    assert load_config(write(tmp_path, "  \n")) == ([], [])


def test_bad_json_is_one_problem_naming_the_file_and_the_place(tmp_path: Path) -> None:
    path = write(tmp_path, '{"mcpServers": {"a": {"command": "x",}}}')
    servers, problems = load_config(path)
    assert servers == []
    assert len(problems) == 1
    assert str(path) in problems[0] and "not valid JSON" in problems[0] and "line 1, column" in problems[0]


def test_a_file_without_mcp_servers_says_what_shape_it_needs(tmp_path: Path) -> None:
    for text in ('["a"]', '{"servers": 3}', '{"other": {}}'):
        servers, problems = load_config(write(tmp_path, text))
        assert servers == [] and len(problems) == 1 and '"mcpServers"' in problems[0]


@pytest.mark.parametrize(("entry", "expected"), [
    ({"command": "x", "args": "-y server"}, '"args" must be a list of text values'),
    ({"command": "x", "args": [1, 2]}, '"args" must be a list of text values'),
    ({"command": "x", "env": {"PORT": 8000}}, '"env" must be an object of text values'),
    ({"command": ""}, '"command" must be the program to start'),
    ({"command": "x", "url": "http://h/mcp"}, 'either "command"'),
    ({}, 'either "command"'),
    ("npx server", "its entry must be an object"),
    ({"url": "ftp://host/mcp"}, "http:// or https://"),
    ({"url": "http://host:notaport/mcp"}, "not a valid URL"),
    ({"url": "http://h/mcp", "headers": ["Authorization"]}, '"headers" must be an object'),
    ({"url": "http://h/mcp", "bearerTokenInKeyring": "yes"}, '"bearerTokenInKeyring" must be true or false'),
    ({"url": "http://h/sse", "type": "sse"}, "SSE transport is not supported"),
    ({"command": "x", "type": "http"}, '"type" says http'),
    ({"url": "http://h/mcp", "type": "stdio"}, '"type" says stdio'),
    ({"command": "x", "type": "websocket"}, '"type" must be "stdio" or "http"'),
    ({"command": "x", "disabled": "no"}, '"disabled" must be true or false'),
])
def test_a_bad_entry_is_left_out_with_a_problem_naming_it_and_the_others_load(
        tmp_path: Path, entry: object, expected: str) -> None:
    path = write(tmp_path, json.dumps({"mcpServers": {"good": {"command": "ok"}, "weather": entry,
                                                      "also-good": {"url": "https://example.org/mcp"}}}))
    servers, problems = load_config(path)
    assert [server.name for server in servers] == ["good", "also-good"]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: server 'weather': ") and expected in problems[0], problems[0]


def test_a_bad_server_name_is_a_problem(tmp_path: Path) -> None:
    servers, problems = load_config(write(tmp_path, json.dumps({"mcpServers": {
        " ": {"command": "x"}, "two\nlines": {"command": "x"}, "n" * 65: {"command": "x"}, "fine": {"command": "x"}}})))
    assert [server.name for server in servers] == ["fine"]
    assert len(problems) == 3 and "empty name" in problems[0] and "one line of at most 64" in problems[1]


def test_vs_code_shape_disabled_entries_and_other_apps_keys(tmp_path: Path) -> None:
    servers, problems = load_config(write(tmp_path, json.dumps({"servers": {
        "web": {"type": "http", "url": "http://localhost:3000/mcp", "timeout": 30},
        "off": {"type": "stdio", "command": "srv", "disabled": True, "cwd": "/tmp/x y"},
        "windsurf": {"serverUrl": "https://h.example/mcp"}}})))
    assert problems == []
    web, off, windsurf = servers
    assert (web.kind, web.url) == (HTTP, "http://localhost:3000/mcp")
    assert (off.kind, off.enabled, off.cwd) == (STDIO, False, "/tmp/x y")
    assert windsurf.url == "https://h.example/mcp"


def test_parse_config_text_returns_the_servers_or_raises_with_every_problem() -> None:
    assert [server.name for server in parse_config_text(CLAUDE_DESKTOP)] == ["filesystem", "notes"]
    with pytest.raises(ValueError, match="not valid JSON") as caught:
        parse_config_text("{")
    assert str(caught.value).startswith("mcp.json is not valid JSON")
    with pytest.raises(ValueError) as caught:
        parse_config_text(json.dumps({"mcpServers": {"a": {"args": []}, "b": {"command": 3}}}))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and "server 'a'" in lines[0] and "server 'b'" in lines[1]


def test_save_config_text_checks_first_then_writes_the_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config" / "mcp.json"
    assert [server.name for server in save_config_text(path, CLAUDE_DESKTOP)] == ["filesystem", "notes"]
    assert path.read_text(encoding="utf-8") == CLAUDE_DESKTOP + "\n"  # the person's layout, kept
    with pytest.raises(ValueError, match="server 'x'"):
        save_config_text(path, '{"mcpServers": {"x": {}}}')
    assert path.read_text(encoding="utf-8") == CLAUDE_DESKTOP + "\n"  # a refused text changes nothing
    assert sorted(p.name for p in path.parent.iterdir()) == ["mcp.json"]  # no temporary file left
    assert load_config(path)[0] == parse_config_text(CLAUDE_DESKTOP)


def test_command_line_is_what_runs_shell_quoted() -> None:
    files = parse_config_text(CLAUDE_DESKTOP)[0]
    line = command_line(files)
    assert line == "LOG_LEVEL=debug npx -y @modelcontextprotocol/server-filesystem '/Users/me/My Documents'"
    assert shlex.split(line)[1:] == [files.command, *files.args]
    tricky = ServerConfig("t", command="/opt/my tools/srv", args=("--name", "it's"), env={"K": "a b"}, cwd="/w d")
    assert command_line(tricky) == "cd '/w d' && K='a b' '/opt/my tools/srv' --name 'it'\"'\"'s'"
    assert command_line(ServerConfig("web", HTTP, url="http://127.0.0.1:8000/mcp")) == "http://127.0.0.1:8000/mcp"


def test_http_hosts_are_the_enabled_http_servers_with_their_ports() -> None:
    servers = parse_config_text(json.dumps({"mcpServers": {
        "local": {"url": "http://127.0.0.1:8000/mcp"}, "plain": {"url": "http://Example.org/mcp"},
        "tls": {"url": "https://api.example.org/mcp"}, "off": {"url": "http://10.0.0.1:1/mcp", "disabled": True},
        "stdio": {"command": "srv"}}}))
    assert http_hosts(servers) == [("127.0.0.1", 8000, "local"), ("example.org", 80, "plain"),
                                   ("api.example.org", 443, "tls")]


def test_the_token_is_named_in_the_keyring_per_server_never_in_the_file() -> None:
    notes = parse_config_text(CLAUDE_DESKTOP)[1]
    assert token_secret_name(notes) == token_secret_name("notes") == "mcp-token:notes"
    assert "Authorization" not in notes.headers
