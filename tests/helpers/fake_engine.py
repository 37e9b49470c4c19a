"""A small OpenAI-compatible engine on 127.0.0.1 that misbehaves on demand, for the remote client's
tests: set ``engine.behaviour`` to one of :data:`BEHAVIOURS` before a request."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = ("ok", "reasoning", "tools", "401", "404", "429", "500", "cut", "malformed", "hang")


def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                      "finish_reason": finish}], **extra}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "big-model", "max_model_len": 32768}]})

    def do_POST(self) -> None:
        engine = self.server.engine  # type: ignore[attr-defined]
        engine.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        behaviour = engine.behaviour
        if behaviour.isdigit():
            self._json(int(behaviour), {"error": {"message": f"told to answer {behaviour}"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        write = self.wfile.write
        write(b": keep-alive\n\n")
        if behaviour == "hang":
            time.sleep(30)
            return
        if behaviour == "reasoning":
            write(chunk({"reasoning_content": "Let me think. "}) + chunk({"reasoning": "Done."}))
        if behaviour == "tools":
            write(chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_weather",
                                                                            "arguments": "{\"ci"}}]}))
            write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Oslo\"}"}}]}))
        write(chunk({"content": "Hello"}) + b": ping\n\n" + chunk({"content": " there"}))
        if behaviour == "cut":
            return
        if behaviour == "malformed":
            write(b"data: {not json\n\n")
            return
        write(chunk({}, "tool_calls" if behaviour == "tools" else "stop"))
        write(f"data: {json.dumps({'choices': [], 'usage': {'prompt_tokens': 7, 'completion_tokens': 2}, 'timings': {'predicted_per_second': 55.5}})}\n\n".encode())
        write(b"data: [DONE]\n\n")


class FakeEngine:
    """The running engine: ``url`` (``…/v1``), ``behaviour``, and the requests it received."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        self.port = server.server_address[1]
        self.behaviour = "ok"
        self.requests: list[dict] = []


@contextlib.contextmanager
def fake_engine() -> Iterator[FakeEngine]:
    """Serve a :class:`FakeEngine` on a free port for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.engine = FakeEngine(server)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.engine  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
