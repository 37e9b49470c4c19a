"""A client for OpenAI-compatible engines (vLLM, llama-server, Ollama, another Cove), with the
standard library: TLS always verified (a private CA file may be given), every connection inside
the engine's own network purpose (the guard lets through its host and port only), each failure
one sentence naming the engine and the cause, and a stream that closes at once when cancelled.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

from desktop.core.engine.stats import GenerationError
from desktop.core.remote.engine_config import EngineConfig, host_port
from desktop.core.remote.sse import DONE, SSEError, SSEParser
from desktop.core.system.network_guard import NetworkRefused, network_purpose

CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 120.0  # a stream silent this long (not even a keep-alive comment) has failed
CANCEL_POLL_S = 0.05


class RemoteError(GenerationError):
    """A remote engine failed; the message is one sentence for a person."""


def _error_text(body: bytes) -> str:
    """The error message in an engine's JSON error body (OpenAI's, FastAPI's or plain)."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return "" if text.startswith("<") else text[:200]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("detail"), str):
            return data["detail"]
        if data.get("message"):
            return str(data["message"])
    return str(data)[:200]


class OpenAIClient:
    """Talks to one engine. ``api_key`` goes as a bearer token."""

    def __init__(self, config: EngineConfig, api_key: str | None = None, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.config, self._key, self.idle_timeout = config, api_key or "", idle_timeout
        self.host, self.port = host_port(config)
        rest = config.url.split("://", 1)[-1]
        self._base = "/" + rest.split("/", 1)[1].strip("/") if "/" in rest else "/v1"

    # -- plumbing ---------------------------------------------------------------------------
    def _purpose(self) -> contextlib.AbstractContextManager:
        """The engine's network purpose: its host and port, and the addresses that name resolves to
        (the guard sees a connect at the address, ``127.0.0.1``, not the name, ``localhost``)."""
        purpose, hosts = f"engine {self.config.name}", {(self.host, self.port)}
        with network_purpose(purpose, hosts=hosts):
            try:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            except OSError:  # the connect fails again, and says why in its own sentence
                infos = []
        return network_purpose(purpose, hosts=hosts | {(str(info[4][0]).lower(), self.port) for info in infos})

    def _connection(self) -> http.client.HTTPConnection:
        if self.config.url.startswith("https://"):
            context = ssl.create_default_context(cafile=self.config.ca_file or None)
            return http.client.HTTPSConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_S, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_S)

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _fail(self, cause: str) -> RemoteError:
        return RemoteError(f"The engine '{self.config.name}' {cause}")

    def _network_error(self, exc: BaseException) -> RemoteError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, NetworkRefused):
            return self._fail(f"could not be reached: {exc}.")
        if isinstance(exc, ConnectionRefusedError):
            return self._fail(f"refused the connection at {where}: is it running?")
        if isinstance(exc, socket.gaierror):
            return self._fail(f"could not be found: no host named '{self.host}'.")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._fail(f"failed the TLS certificate check ({exc.verify_message}): give its CA file if it "
                              "uses a private certificate authority.")
        if isinstance(exc, ssl.SSLError):
            return self._fail(f"failed the TLS handshake ({exc.reason or exc}).")
        if isinstance(exc, TimeoutError):
            return self._fail(f"did not answer within {self.idle_timeout:g} s.")
        if isinstance(exc, (ConnectionError, http.client.IncompleteRead)):
            return self._fail(f"closed the connection ({exc}).")
        return self._fail(f"could not be reached at {where}: {exc}.")

    def _status_error(self, status: int, body: bytes, model: str = "") -> RemoteError:
        text = _error_text(body)
        said = f": {text}" if text else ""
        if status in (401, 403):
            return self._fail(f"refused the API key ({status}){said}. Check the key in Settings → Engines.")
        if status == 404:
            return self._fail(f"has no model '{model}' (404){said}." if model else
                              f"has no model list at {self._base}/models (404){said}: is its URL the "
                              "OpenAI-compatible base, such as http://host:8000/v1?")
        if status == 429:
            return self._fail(f"is busy or limits requests (429){said}. Try again shortly.")
        if status >= 500:
            return self._fail(f"failed on its side ({status}){said}.")
        return self._fail(f"rejected the request ({status}){said}.")

    # -- calls ------------------------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        """The engine's models (``GET /v1/models``'s ``data``)."""
        with self._purpose():
            connection = self._connection()
            try:
                connection.request("GET", f"{self._base}/models", headers=self._headers(False))
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise self._network_error(exc) from exc
            finally:
                connection.close()
        if response.status != 200:
            raise self._status_error(response.status, body)
        try:
            data = json.loads(body)
            models = data["data"] if isinstance(data, dict) else data
            return [m for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._fail("sent a model list that is not OpenAI's JSON.") from exc

    def stream_chat(self, body: dict[str, Any], cancel: threading.Event) -> Iterator[dict[str, Any]]:
        """POST ``/v1/chat/completions`` with ``stream: true``; yields each chunk. Ends quietly
        when ``cancel`` is set (the connection is closed at once), raises :class:`RemoteError`."""
        with self._purpose():
            connection = self._connection()
            try:
                connection.request("POST", f"{self._base}/chat/completions",
                                   body=json.dumps({**body, "stream": True}).encode("utf-8"),
                                   headers=self._headers(True))
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise self._network_error(exc) from exc
        sock = connection.sock  # getresponse() forgets it when the engine closes after the answer
        if sock is not None:  # the wait for the head counts as silence too (a long prompt evaluating)
            sock.settimeout(self.idle_timeout)
        done = threading.Event()  # from here, Stop shuts the socket down, even before the head came
        threading.Thread(target=_close_on_cancel, args=(sock, cancel, done), daemon=True,
                         name="cove-engine-cancel").start()
        try:
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                if cancel.is_set():
                    return
                raise self._network_error(exc) from exc
            try:
                if response.status != 200:
                    raise self._status_error(response.status, response.read(), str(body.get("model", "")))
                yield from self._events(response, cancel)
            finally:
                response.close()
        finally:
            done.set()
            connection.close()

    def _events(self, response: http.client.HTTPResponse, cancel: threading.Event) -> Iterator[dict[str, Any]]:
        """The stream's events until ``[DONE]`` (quietly nothing more once ``cancel`` is set)."""
        parser = SSEParser()
        while True:
            try:
                raw = response.readline()
            except (OSError, http.client.HTTPException) as exc:
                if cancel.is_set():
                    return
                if isinstance(exc, TimeoutError):
                    raise self._network_error(exc) from exc
                raise self._fail(f"closed the stream mid-answer ({exc or type(exc).__name__}).") from exc
            if cancel.is_set():
                return
            if not raw:
                for event in parser.finish():
                    if event is DONE:
                        return
                    yield event
                raise self._fail("closed the stream mid-answer (the connection ended before [DONE]).")
            try:
                events = parser.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))
            except SSEError as exc:
                raise self._fail(f"sent a malformed stream: {exc}.") from exc
            for event in events:
                if event is DONE:
                    return
                if "error" in event and not event.get("choices"):
                    raise self._fail(f"stopped with an error: {_error_text(json.dumps(event).encode())}.")
                yield event


def _close_on_cancel(sock: socket.socket | None, cancel: threading.Event, done: threading.Event) -> None:
    """Shut the stream's socket down as soon as ``cancel`` is set (a blocked read returns at once)."""
    while not done.is_set():
        if cancel.wait(CANCEL_POLL_S):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return
