"""The HTTP side of the API: routes, access, limits, and answers streamed as Server-Sent Events.

The standard library's threading HTTP server (one thread per connection) suits an engine that
generates on one thread: each request thread parses and checks its body, queues a
:class:`~desktop.core.server.jobs.Job`, and waits on its events, watching its socket so that a
client that disconnects cancels its generation within a tenth of a second.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import select
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from desktop.core.server.api_errors import ApiError, bad_request
from desktop.core.server.api_requests import chat_request, completion_request, embedding_inputs, parse_json
from desktop.core.server.api_responses import ChatShapes, api_tool_calls, embeddings, finish_reason, model_list
from desktop.core.server.jobs import DONE, ERROR, Job

logger = logging.getLogger(__name__)

DISCARD_MAX = 64 * 1024 * 1024  # a too-large body up to this size is read away before the 413
POLL_S = 0.1  # how often a waiting request looks at its socket and its deadline


class ClientGone(Exception):
    """The client closed its connection."""


class ApiHandler(BaseHTTPRequestHandler):
    """One connection's requests; ``self.server.api`` is the :class:`~desktop.core.server.api_server.ApiServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "Cove"

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """The server's shared state (config, catalog, queue)."""
        return self.server.api  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.info("%s %s", self.address_string(), format % args)

    def _cors(self) -> dict[str, str]:
        origin = self.headers.get("Origin", "")
        allowed = self.api.config.cors_origins
        if origin and ("*" in allowed or origin in allowed):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type, x-api-key",
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS"}
        return {}

    def _send_json(self, status: int, body: dict[str, Any], close: bool = False) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self._cors().items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: ApiError, close: bool = False) -> None:
        logger.info("API %s %s: %s %s", self.command, self.path, error.status, error.message)
        self._send_json(error.status, error.body(), close)

    def _authorized(self) -> bool:
        key = self.api.config.api_key
        if not key:
            return True
        given = self.headers.get("x-api-key", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), key.encode())

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError as exc:
            raise bad_request("Content-Length is not a number.") from exc
        limit = self.api.config.max_body
        if length > limit:
            self._discard(length)
            raise ApiError(413, f"The request body is {length} bytes; at most {limit} are accepted.",
                           code="body_too_large")
        return parse_json(self.rfile.read(length))

    def _discard(self, length: int) -> None:
        """Read a too-large body away (up to DISCARD_MAX) so the client can read the 413; a larger
        one is not read: the connection closes under it."""
        if length > DISCARD_MAX:
            return
        while length > 0:
            got = self.rfile.read(min(length, 1 << 16))
            if not got:
                return
            length -= len(got)

    # -- routes -----------------------------------------------------------------------------
    def do_OPTIONS(self) -> None:
        """A browser's preflight: allowed only for the origins the person listed."""
        cors = self._cors()
        self.send_response(204 if cors else 403)
        for name, value in cors.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """``/v1/models`` (and ``/v1/models/ID``)."""
        if not self._authorized():
            self._send_error(ApiError(401, "A valid API key is required (Authorization: Bearer KEY).",
                                      code="invalid_api_key"))
            return
        path = self.path.split("?")[0].rstrip("/")
        models = self.api.catalog.models()
        if path in ("/v1/models", "/models"):
            self._send_json(200, model_list(models))
        elif path.startswith(("/v1/models/", "/models/")):
            wanted = path.split("/models/", 1)[1]
            found = [m for m in models if m["id"] == wanted]
            if found:
                self._send_json(200, model_list(found)["data"][0])
            else:
                self._send_error(self.api.catalog.unknown(wanted))
        else:
            self._send_error(ApiError(404, f"There is no {path} here; the API is under /v1.", code="not_found"))

    def do_POST(self) -> None:
        """The generation endpoints."""
        routes = {"/v1/chat/completions": self._chat, "/chat/completions": self._chat,
                  "/v1/completions": self._completion, "/completions": self._completion,
                  "/v1/embeddings": self._embeddings, "/embeddings": self._embeddings}
        route = routes.get(self.path.split("?")[0].rstrip("/"))
        try:
            if not self._authorized():
                raise ApiError(401, "A valid API key is required (Authorization: Bearer KEY).", code="invalid_api_key")
            if route is None:
                raise ApiError(404, f"There is no {self.path} here; the API is under /v1.", code="not_found")
            route(self._body())
        except ApiError as error:
            self._send_error(error, close=error.status == 413)
        except ClientGone:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chat(self, data: dict[str, Any]) -> None:
        self._generate(chat_request(data, self.api.config.defaults))

    def _completion(self, data: dict[str, Any]) -> None:
        self._generate(completion_request(data, self.api.config.defaults))

    def _embeddings(self, data: dict[str, Any]) -> None:
        model, texts = embedding_inputs(data)
        served = self.api.catalog.check(model, embedding=True)
        job = self._queue(("embed", served, texts))
        kind, payload = self._next_event(job)
        if kind == ERROR:
            raise payload
        self._send_json(200, embeddings(served, payload["vectors"], payload["prompt_tokens"]))

    # -- generation -------------------------------------------------------------------------
    def _queue(self, request: Any) -> Job:
        job = Job(request, client=self.client_address[0])
        job.deadline = time.monotonic() + self.api.config.request_timeout_s  # type: ignore[attr-defined]
        self.api.jobs.put(job)
        return job

    def _client_gone(self) -> bool:
        """True when the peer closed its side (a readable socket with nothing to read)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _next_event(self, job: Job) -> tuple[str, Any]:
        """The job's next event; cancels it and raises when the client left or the time is up."""
        while True:
            try:
                return job.events.get(timeout=POLL_S)
            except queue.Empty:
                pass
            if self._client_gone():
                job.cancel.set()
                logger.info("API client %s went away: its request %d is cancelled", job.client, job.id)
                raise ClientGone
            if time.monotonic() > job.deadline:  # type: ignore[attr-defined]
                job.cancel.set()
                job.ended.wait(5)
                raise ApiError(504, f"The request took longer than {self.api.config.request_timeout_s:g} s and was "
                               "stopped.", type_="server_error", code="timeout")

    def _generate(self, request: Any) -> None:
        served = self.api.catalog.check(request.model)
        job = self._queue(request)
        first = self._next_event(job)
        if first[0] == ERROR:
            raise first[1]
        shapes = ChatShapes(served, request.kind)
        if request.stream:
            self._stream(job, request, shapes, first)
        else:
            self._whole(job, shapes, first)

    def _whole(self, job: Job, shapes: ChatShapes, event: tuple[str, Any]) -> None:
        content, reasoning = [], []
        while event[0] != DONE:
            if event[0] == ERROR:
                raise event[1]
            delta = shapes.piece_delta(event[1])
            if delta is not None:
                (reasoning if "reasoning_content" in delta else content).append(
                    delta.get("content") or delta.get("reasoning_content", ""))
            event = self._next_event(job)
        self._send_json(200, shapes.whole("".join(content), "".join(reasoning), event[1]))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        self._write_chunk(f"data: {text}\n\n".encode())

    def _stream(self, job: Job, request: Any, shapes: ChatShapes, event: tuple[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in self._cors().items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if request.kind == "chat":
                self._event(shapes.chunk({"role": "assistant", "content": ""}))
            while event[0] != DONE:
                if event[0] == ERROR:
                    self._event(event[1].body())
                    break
                delta = shapes.piece_delta(event[1])
                if delta is not None:
                    self._event(shapes.chunk(delta))
                event = self._next_event(job)
            else:
                self._stream_end(shapes, request, event[1])
        except (BrokenPipeError, ConnectionResetError) as exc:
            job.cancel.set()
            raise ClientGone from exc
        except ApiError as error:  # a timeout after the stream began: say so in the stream
            self._event(error.body())
        self._event("[DONE]")
        self._write_chunk(b"")

    def _stream_end(self, shapes: ChatShapes, request: Any, stats: dict[str, Any]) -> None:
        if stats.get("tool_calls"):
            self._event(shapes.chunk({"tool_calls": api_tool_calls(stats["tool_calls"], with_index=True)}))
        self._event(shapes.chunk({}, finish_reason(stats)))
        if request.include_usage:
            self._event(shapes.usage_chunk(stats))
