"""McpHost against real MCP servers (the SDK's own server API) in real subprocesses, over stdio and
over Streamable HTTP on 127.0.0.1: no protocol is mocked."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from desktop.core.system import network_guard
from desktop.core.system.network_guard import NetworkRefused, network_purpose
from desktop.core.tools.mcp_config import HTTP, ServerConfig
from desktop.core.tools.mcp_host import McpHost, ToolServerError
from desktop.core.tools.specs import ERROR, OK, ToolResult, content_text
from tests.helpers.mcp_servers import SCRIPT, TOKEN_ENV, free_port, http_server

START_S = 15.0  # a generous start: the servers import the SDK (about a second)


def stdio(name: str, behaviour: str = "normal", **env: str) -> ServerConfig:
    return ServerConfig(name, command=sys.executable, args=(str(SCRIPT), "stdio", behaviour), env=env)


@pytest.fixture
def host() -> Iterator[McpHost]:
    mcp = McpHost()
    yield mcp
    mcp.close()


@pytest.fixture(scope="module")
def weather() -> Iterator[McpHost]:
    """A host with the stdio test server "weather" started, shared by the tests that only call it."""
    mcp = McpHost()
    mcp.start(stdio("weather", COVE_TEST_VALUE="from mcp.json"), START_S)
    yield mcp
    mcp.close()


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[str, int]]:
    """One HTTP test server for the module's tests: (its URL, its port)."""
    with http_server() as address:
        yield address


@pytest.fixture
def guard() -> Iterator[network_guard.NetworkLog]:
    log = network_guard.install(network_guard.NetworkLog())
    yield log
    network_guard.uninstall(log)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stdio_server_s_tools_are_listed_and_called(weather: McpHost) -> None:
    host = weather
    assert host.status("elsewhere") == "stopped"
    tools = host.tools("weather")
    assert [tool.name for tool in tools] == ["get_weather", "add", "plan_trip", "read_env", "pid"]
    weather = tools[0]
    assert weather.server == "weather" and weather.description == "Today's weather in a city."
    assert weather.parameters["properties"]["city"]["type"] == "string" and weather.parameters["required"] == ["city"]
    assert host.status("weather") == "running"

    result = host.call("weather", "get_weather", {"city": "Paris"}, timeout=5, call_id="c1")
    assert result == ToolResult("c1", "get_weather", "Sunny, 21 °C in Paris", OK, result.duration_s, "weather",
                                {"city": "Paris"})
    assert 0 < result.duration_s < 5
    assert host.call("weather", "add", {"a": 2, "b": 40}, timeout=5).content == "42"
    trip = {"trip": {"from": {"city": "Lyon"}, "to": {"city": "Oslo"}, "days": 3}}
    assert host.call("weather", "plan_trip", trip, timeout=5).content == "Lyon → Oslo, 3 days"


def test_nested_object_arguments_keep_their_schema(weather: McpHost) -> None:
    plan = next(tool for tool in weather.tools("weather") if tool.name == "plan_trip")
    assert plan.parameters["properties"]["trip"]["type"] == "object" and plan.parameters["required"] == ["trip"]
    assert plan.for_template()["function"]["parameters"] == plan.parameters


def test_results_other_than_text_are_summarised_for_the_model() -> None:
    import mcp_types as types

    blocks = [types.TextContent(text="Here:"), types.ImageContent(data="aGVsbG8=", mime_type="image/png"),
              types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="inside")),
              types.EmbeddedResource(resource=types.BlobResourceContents(uri="file:///b.pdf", blob="AAAA",
                                                                         mime_type="application/pdf")),
              types.ResourceLink(name="report", uri="file:///r.pdf")]
    assert content_text(blocks).splitlines() == [
        "Here:", "[image: image/png, about 6 bytes, not shown to the model]", "inside",
        "[resource: file:///b.pdf, application/pdf]", "[resource: report at file:///r.pdf]"]
    assert content_text([], {"temp": 21, "sky": "clear"}) == '{"temp": 21, "sky": "clear"}'  # structured only
    assert content_text([types.TextContent(text="21")], {"result": 21}) == "21"  # its text, not twice
    assert content_text([]) == "(the tool returned nothing)"


def test_the_server_s_own_errors_are_error_results(weather: McpHost) -> None:
    host = weather
    wrong = host.call("weather", "add", {"a": "many"}, timeout=5)
    assert wrong.status == ERROR and "validation error" in wrong.content  # the server's text (isError)
    unknown = host.call("weather", "no_such_tool", {}, timeout=5)
    assert unknown.status == ERROR and "no_such_tool" in unknown.content
    assert host.call("weather", "add", {"a": 1, "b": 1}, timeout=5).content == "2"  # and it goes on


def test_a_stdio_server_gets_the_environment_of_its_entry(weather: McpHost) -> None:
    assert weather.call("weather", "read_env", {"name": "COVE_TEST_VALUE"}, timeout=5).content == "from mcp.json"


def test_call_async_returns_a_future_a_callback_can_be_attached_to(weather: McpHost) -> None:
    host = weather
    done = threading.Event()
    seen: list[ToolResult] = []
    future = host.call_async("weather", "get_weather", {"city": "Rome"}, timeout=5)
    assert isinstance(future, Future)
    future.add_done_callback(lambda f: (seen.append(f.result()), done.set()))
    assert done.wait(10) and seen[0].content == "Sunny, 21 °C in Rome"


def test_a_streamable_http_server_is_reached_only_through_its_purpose(
        host: McpHost, web: tuple[str, int], guard: network_guard.NetworkLog) -> None:
    url, port = web
    tools = host.start(ServerConfig("web", HTTP, url=url), START_S)
    assert [tool.name for tool in tools][:2] == ["get_weather", "add"] and tools[0].server == "web"
    result = host.call("web", "get_weather", {"city": "Oslo"}, timeout=5)
    assert (result.status, result.content, result.server) == (OK, "Sunny, 21 °C in Oslo", "web")
    host.stop("web")
    assert host.status("web") == "stopped"

    events = guard.events()
    assert events, "the HTTP session made no attempt the guard saw"
    assert {(e.host, e.port) for e in events} == {("127.0.0.1", port)}
    assert {e.purpose for e in events} == {"MCP server web"} and all(e.allowed for e in events)
    assert {"lookup", "connect"} <= {e.kind for e in events}


def test_inside_an_http_server_s_purpose_another_host_or_port_is_refused(
        host: McpHost, web: tuple[str, int], guard: network_guard.NetworkLog) -> None:
    url, port = web
    host.start(ServerConfig("web", HTTP, url=url), START_S)
    allowed = host.allowed_hosts("web")
    assert ("127.0.0.1", port) in allowed
    other = free_port()
    with network_purpose("MCP server web", hosts=allowed):
        with pytest.raises(NetworkRefused, match="may reach only its own host"):
            socket.create_connection(("127.0.0.1", other), timeout=1)
        with pytest.raises(NetworkRefused):
            socket.getaddrinfo("example.org", 443)
    refused = [e for e in guard.events() if not e.allowed]
    assert [(e.kind, e.host, e.port, e.purpose) for e in refused] == [
        ("connect", "127.0.0.1", other, "MCP server web"), ("lookup", "example.org", 443, "MCP server web")]
    assert host.call("web", "add", {"a": 1, "b": 2}, timeout=5).content == "3"  # the server itself still works


def test_a_purpose_without_hosts_is_unchanged_and_a_limit_ends_with_its_block(
        guard: network_guard.NetworkLog) -> None:
    port = free_port()
    with network_purpose("a download", hosts={("127.0.0.1", port)}):
        with network_purpose("something else"), pytest.raises(ConnectionRefusedError) as caught:
            socket.create_connection(("127.0.0.1", port + 1 if port < 65535 else port - 1), timeout=1)
        assert not isinstance(caught.value, NetworkRefused)  # let through: nobody listens there
    with pytest.raises(NetworkRefused, match="nobody asked for"):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    assert [e.allowed for e in guard.events()] == [True, True, False]


def test_an_http_server_s_bearer_token_comes_from_the_keyring_callable(guard: network_guard.NetworkLog) -> None:
    with http_server(env={TOKEN_ENV: "s3cret"}) as (url, _port):
        server = ServerConfig("private", HTTP, url=url, bearer_token_in_keyring=True)
        asked: list[str] = []
        right = McpHost(token_for=lambda name: asked.append(name) or "s3cret")
        wrong = McpHost(token_for=lambda name: "guess")
        try:
            right.start(server, START_S)
            assert asked == ["mcp-token:private"]
            assert right.call("private", "add", {"a": 2, "b": 2}, timeout=5).content == "4"
            with pytest.raises(ToolServerError, match="needs a bearer token"):
                McpHost().start(server, START_S)  # no keyring at all: told, not crashed
            with pytest.raises(ToolServerError, match="HTTP 401") as caught:
                wrong.start(server, START_S)
            assert str(caught.value).startswith("MCP server 'private' answered HTTP 401")
            assert "bearer token" in str(caught.value) and "guess" not in str(caught.value)
        finally:
            right.close()
            wrong.close()


def test_an_http_server_that_is_not_there_fails_to_start_with_a_message(host: McpHost) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    begun = time.monotonic()
    with pytest.raises(ToolServerError, match="^MCP server 'gone' could not be reached: "):
        host.start(ServerConfig("gone", HTTP, url=url), 3)
    assert time.monotonic() - begun < 3
    assert host.status("gone").startswith("failed: could not be reached")


def test_a_server_that_exits_at_start_is_named_with_its_stderr(host: McpHost, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ToolServerError) as caught:
        host.start(stdio("weather", "exit-at-start"), START_S)
    assert str(caught.value) == "MCP server 'weather' exited at start: weather server: missing API key WEATHER_KEY"
    assert caught.value.server == "weather"
    assert host.status("weather") == f"failed: {caught.value.message}" and host.tools("weather") == []
    assert "WEATHER_KEY" not in capfd.readouterr().err  # captured, never on Cove's console


def test_a_program_that_cannot_be_started_says_so(host: McpHost) -> None:
    missing = ServerConfig("ghost", command="/nonexistent/cove-mcp-server")
    with pytest.raises(ToolServerError, match="^MCP server 'ghost' could not be started: .*nonexistent"):
        host.start(missing, 3)


def test_a_server_that_hangs_at_start_times_out(host: McpHost) -> None:
    begun = time.monotonic()
    with pytest.raises(ToolServerError, match="^MCP server 'stuck' did not answer within 2 s at start$"):
        host.start(stdio("stuck", "hang-at-start"), 2)
    assert 2 <= time.monotonic() - begun < 6
    assert host.status("stuck").startswith("failed: did not answer")


def test_a_call_that_hangs_times_out_and_the_server_starts_again_for_the_next(host: McpHost) -> None:
    host.start(stdio("slowpoke", "hang-in-call"), START_S)
    first_pid = host.call("slowpoke", "pid", {}, timeout=5).content
    begun = time.monotonic()
    result = host.call("slowpoke", "slow", {}, timeout=1.5)
    assert 1.5 <= time.monotonic() - begun < 5
    assert result.status == ERROR and result.content == "MCP server 'slowpoke': the call to 'slow' timed out after 1.5 s"
    assert 1.5 <= result.duration_s < 5
    assert host.status("slowpoke").startswith("failed: the call to 'slow' timed out")
    assert host.call("slowpoke", "get_weather", {"city": "Bern"}, timeout=5).content == "Sunny, 21 °C in Bern"
    assert host.status("slowpoke") == "running"
    assert host.call("slowpoke", "pid", {}, timeout=5).content != first_pid  # a new process


def test_a_server_that_dies_mid_call_gives_an_error_result_naming_it(host: McpHost) -> None:
    host.start(stdio("fragile", "die-mid-call"), START_S)
    result = host.call("fragile", "crash", {}, timeout=5)
    assert result.status == ERROR
    assert result.content == "MCP server 'fragile' stopped during the call to 'crash': crash: the server dies now"
    assert host.status("fragile").startswith("failed: stopped during the call")
    assert host.call("fragile", "add", {"a": 1, "b": 2}, timeout=5).content == "3"  # started again


def test_an_http_server_that_dies_mid_call_gives_an_error_result_naming_it(host: McpHost) -> None:
    with http_server("die-mid-call") as (url, _port):
        host.start(ServerConfig("remote", HTTP, url=url), START_S)
        result = host.call("remote", "crash", {}, timeout=5)
    assert (result.status, result.content) == (ERROR, "MCP server 'remote' stopped during the call to 'crash'")
    again = host.call("remote", "add", {"a": 1, "b": 2}, timeout=5)  # tried again: nobody listens now
    assert again.status == ERROR and again.content.startswith("MCP server 'remote' could not be reached")


def test_garbage_from_a_server_is_a_clear_error_and_the_session_goes_on(host: McpHost) -> None:
    tools = host.start(stdio("raw", "garbage"), START_S)
    assert [tool.name for tool in tools] == ["broken", "noise", "fine"]
    malformed = host.call("raw", "broken", {}, timeout=3)
    assert malformed.status == ERROR
    assert malformed.content.startswith("MCP server 'raw' sent a result Cove cannot read for 'broken': content")
    begun = time.monotonic()
    noise = host.call("raw", "noise", {}, timeout=3)
    assert noise.status == ERROR and time.monotonic() - begun < 2  # not left to time out
    assert noise.content.startswith("MCP server 'raw' sent something that is not MCP during the call to 'noise'")
    assert "Invalid JSON" in noise.content
    assert host.call("raw", "fine", {}, timeout=3).content == "fine" and host.status("raw") == "running"


def test_calls_to_servers_not_running_are_errors_not_exceptions(host: McpHost) -> None:
    result = host.call("nobody", "get_weather", {"city": "X"}, timeout=2, call_id="c9")
    assert (result.status, result.call_id, result.server) == (ERROR, "c9", "nobody")
    assert result.content == "MCP server 'nobody' is not started"
    with pytest.raises(ToolServerError):
        host.start(stdio("weather", "exit-at-start"), START_S)
    assert host.call("weather", "get_weather", {}, timeout=2).content.startswith(
        "MCP server 'weather' is not running (failed: exited at start")
    with pytest.raises(ToolServerError, match="is disabled"):
        host.start(ServerConfig("off", command="x", enabled=False))


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(pid, 0) probes a process on POSIX only")
def test_stop_ends_one_server_and_close_ends_them_all(host: McpHost) -> None:
    host.start(stdio("one"), START_S)
    host.start(stdio("two"), START_S)
    pids = [int(host.call(name, "pid", {}, timeout=5).content) for name in ("one", "two")]
    assert all(alive(pid) for pid in pids)
    host.stop("one")
    assert host.status("one") == "stopped" and host.tools("one") == [] and not alive(pids[0])
    assert host.call("one", "pid", {}, timeout=2).status == ERROR
    assert host.status("two") == "running"
    host.close()
    host.close()  # idempotent
    assert not alive(pids[1])
    assert host._thread is not None and host._thread.name == "cove-mcp" and not host._thread.is_alive()
    after = host.call("two", "pid", {}, timeout=2)
    assert after.status == ERROR and "closed" in after.content


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(pid, 0) probes a process on POSIX only")
def test_starting_a_server_again_replaces_its_session(host: McpHost) -> None:
    host.start(stdio("weather"), START_S)
    first = host.call("weather", "pid", {}, timeout=5).content
    host.start(stdio("weather"), START_S)
    assert host.call("weather", "pid", {}, timeout=5).content != first
    assert not alive(int(first))
