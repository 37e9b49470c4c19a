"""`cove chat --tools` and `cove tools`: real processes, the real model (SmolLM2's weights with Qwen
2.5's template), the real test MCP servers (the SDK's server API) over stdio and Streamable HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths, app_paths
from tests.helpers.mcp_servers import SCRIPT, http_server
from tests.helpers.templated_model import with_template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, starter_model: Path, probed_cache: Path) -> AppPaths:
    paths = app_paths(tmp_path_factory.mktemp("tools") / "cove").ensure()
    shutil.copy(probed_cache, paths.probe_file)
    return paths


@pytest.fixture(scope="module")
def hermes(home: AppPaths, starter_model: Path) -> Path:
    return with_template(starter_model, "Qwen-Qwen2.5-7B-Instruct", home.data_dir / "smol-qwen25.gguf")


def cove(paths: AppPaths, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=300, input=stdin)


def configure(paths: AppPaths, servers: dict) -> None:
    paths.mcp_config.write_text(json.dumps({"mcpServers": servers}))


STDIO = {"weather": {"command": sys.executable, "args": [str(SCRIPT), "stdio"]}}


def test_chat_with_a_required_tool_calls_it_and_answers(home: AppPaths, hermes: Path):
    configure(home, STDIO)
    run = cove(home, "chat", "--model", str(hermes), "--tools", "weather", "--require-tool", "get_weather",
               "--allow-tools", "--json", "--temperature", "0", "--seed", "5", "--max-tokens", "40",
               "What is the weather in Paris?")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    [call] = result["tool_calls"]
    assert call["name"] == "get_weather" and call["status"] == "ok" and call["server"] == "weather"
    assert call["result"] == f"Sunny, 21 °C in {call['arguments']['city']}"
    assert result["rounds"] == 2 and result["answer"].strip()
    store = Store(home.database)
    try:
        messages = store.active_path(result["conversation"])
    finally:
        store.close()
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls[0]["arguments"] == call["arguments"] and messages[2].content == call["result"]


def test_without_allow_tools_the_start_and_the_call_are_asked_on_the_terminal(home: AppPaths, hermes: Path):
    configure(home, {"weather2": STDIO["weather"]})
    # No terminal to ask on: nothing is started, and the person is told why.
    run = cove(home, "chat", "--model", str(hermes), "--tools", "weather2", "--require-tool", "get_weather",
               "--max-tokens", "20", "Weather in Oslo?", stdin="")
    assert run.returncode == 1 and "MCP server 'weather2' was not started (not allowed)" in run.stderr


def test_cove_tools_lists_stdio_and_http_servers_and_their_tools(home: AppPaths):
    with http_server() as (url, _port):
        configure(home, {**STDIO, "web": {"url": url}})
        run = cove(home, "tools", "--json", "--allow-tools")
        table = cove(home, "tools", "--allow-tools")
    stopped = cove(home, "tools", "--allow-tools")  # the HTTP server is gone: named, with why
    assert stopped.returncode == 1 and "MCP server 'web' could not be reached" in stopped.stdout
    assert run.returncode == 0, run.stderr
    listed = {s["name"]: s for s in json.loads(run.stdout)["servers"]}
    assert listed["weather"]["kind"] == "stdio" and listed["web"]["kind"] == "http"
    for server in listed.values():
        assert server["status"] == "running"
        assert {"get_weather", "add"} <= {t["name"] for t in server["tools"]}
    assert table.returncode == 0 and "weather" in table.stdout and "get_weather" in table.stdout


def test_a_server_that_exits_at_start_is_named_and_the_chat_is_refused_clearly(home: AppPaths, hermes: Path):
    configure(home, {"broken": {"command": sys.executable, "args": [str(SCRIPT), "stdio", "exit-at-start"]}})
    run = cove(home, "chat", "--model", str(hermes), "--tools", "broken", "--allow-tools", "--max-tokens", "8", "Hi")
    assert run.returncode == 1 and "MCP server 'broken'" in run.stderr
