"""MCP servers for the tests, written with the SDK's own server API (and one raw-protocol server).

Run as a script::

    python tests/helpers/mcp_servers.py stdio [BEHAVIOUR]
    python tests/helpers/mcp_servers.py http PORT [BEHAVIOUR]

Tools: ``get_weather(city)`` ("Sunny, 21 °C in Paris"), ``add(a, b)``, ``plan_trip(trip)`` (nested
object arguments), ``read_env(name)``, ``pid()``. Behaviours: ``normal``; ``exit-at-start`` (an error on
stderr, exit 2 before the handshake); ``hang-at-start`` (never answers); ``hang-in-call`` (adds
``slow``, which never returns); ``die-mid-call`` (adds ``crash``, which ``os._exit(3)``\\ s);
``garbage`` (stdio only: a hand-written JSON-RPC server whose ``broken`` tool answers with a
malformed result and whose ``noise`` tool writes a line that is not JSON-RPC). Over HTTP, the
environment variable ``MCP_TEST_TOKEN`` makes the server demand ``Authorization: Bearer <it>``.

:func:`http_server` starts the HTTP one on 127.0.0.1 at a free port and stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
TOKEN_ENV = "MCP_TEST_TOKEN"


def weather(city: str) -> str:
    """The deterministic forecast the tests expect."""
    return f"Sunny, 21 °C in {city}"


def build_server(behaviour: str) -> Any:
    """The SDK server with the test tools (``FastMCP`` in mcp 1, ``MCPServer`` in mcp 2)."""
    try:
        from mcp.server.mcpserver import MCPServer as Server
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server
    server = Server("cove-test", log_level="WARNING")

    @server.tool()
    def get_weather(city: str) -> str:
        """Today's weather in a city."""
        return weather(city)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @server.tool()
    def plan_trip(trip: dict[str, Any]) -> str:
        """Plan a trip: {"from": {"city": …}, "to": {"city": …}, "days": n}."""
        return f"{trip['from']['city']} → {trip['to']['city']}, {trip.get('days', 1)} days"

    @server.tool()
    def read_env(name: str) -> str:
        """The value of an environment variable of the server's process."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    def pid() -> int:
        """The server's process id (the tests check that it ends)."""
        return os.getpid()

    if behaviour == "hang-in-call":
        @server.tool()
        async def slow() -> str:
            """Never returns."""
            import anyio
            await anyio.sleep(3600)
            return "late"

    if behaviour == "die-mid-call":
        @server.tool()
        def crash() -> str:
            """Kills the server in the middle of the call."""
            sys.stderr.write("crash: the server dies now\n")
            sys.stderr.flush()
            os._exit(3)

    return server


# --- garbage: a raw JSON-RPC stdio server --------------------------------------------------------

RAW_TOOLS = [{"name": name, "description": name, "inputSchema": {"type": "object", "properties": {}}}
             for name in ("broken", "noise", "fine")]


def _raw_answer(request: dict[str, Any]) -> dict[str, Any] | str | None:
    """The raw server's answer to one request (a str is written as it is, not as JSON)."""
    method, rid = request.get("method"), request.get("id")
    if rid is None:
        return None  # a notification
    if method == "initialize":
        result: Any = {"protocolVersion": request["params"]["protocolVersion"], "capabilities": {"tools": {}},
                       "serverInfo": {"name": "raw", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": RAW_TOOLS}
    elif method == "tools/call" and request["params"]["name"] == "noise":
        return "this line is not JSON-RPC <<<"
    elif method == "tools/call" and request["params"]["name"] == "broken":
        result = {"content": "not a list", "isError": "perhaps"}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "fine"}]}
    else:
        result = {}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def run_raw() -> None:
    """Answer line-delimited JSON-RPC on stdin/stdout, by hand."""
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = _raw_answer(json.loads(line))
        if answer is not None:
            sys.stdout.write((answer if isinstance(answer, str) else json.dumps(answer)) + "\n")
            sys.stdout.flush()


# --- HTTP ----------------------------------------------------------------------------------------

def _with_token(app: Any, token: str) -> Any:
    """ASGI wrapper answering 401 unless the request carries the bearer token."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
            return
        await app(scope, receive, send)

    return guarded


def run_http(port: int, behaviour: str) -> None:
    """Serve Streamable HTTP at http://127.0.0.1:PORT/mcp until killed."""
    import uvicorn

    app = build_server(behaviour).streamable_http_app()
    token = os.environ.get(TOKEN_ENV)
    uvicorn.run(_with_token(app, token) if token else app, host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str]) -> None:
    transport = argv[0]
    port = int(argv[1]) if transport == "http" else 0
    behaviour = (argv[2:] if transport == "http" else argv[1:]) or ["normal"]
    behaviour_name = behaviour[0]
    if behaviour_name == "exit-at-start":
        sys.stderr.write("weather server: missing API key WEATHER_KEY\n")
        sys.exit(2)
    if behaviour_name == "hang-at-start":
        time.sleep(3600)
    if behaviour_name == "garbage":
        run_raw()
    elif transport == "http":
        run_http(port, behaviour_name)
    else:
        build_server(behaviour_name).run("stdio")


# --- for the tests -------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    from desktop.core.system.network_guard import network_purpose

    with network_purpose("tests: is the MCP test server up"):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False


@contextlib.contextmanager
def http_server(behaviour: str = "normal", env: dict[str, str] | None = None,
                timeout: float = 20.0) -> Iterator[tuple[str, int]]:
    """Run the HTTP test server; yields (its URL, its port) once it listens, and stops it after."""
    port = free_port()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        process = subprocess.Popen([sys.executable, str(SCRIPT), "http", str(port), behaviour],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, **(env or {})})
        try:
            deadline = time.monotonic() + timeout
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr.seek(0)
                    raise RuntimeError(f"the MCP test server did not start: {stderr.read()[-2000:]}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/mcp", port
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
