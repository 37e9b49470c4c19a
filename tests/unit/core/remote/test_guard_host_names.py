"""An engine added by host name (``localhost``, ``gpu-box``) passes Cove's network guard: the guard
sees the connect at the address the name resolves to, which the engine's purpose must allow too."""

from __future__ import annotations

import pytest

from desktop.core.remote.engine_config import EngineConfig
from desktop.core.remote.openai_client import OpenAIClient
from desktop.core.system import network_guard
from tests.helpers import fake_engine as fake


@pytest.fixture
def engine():
    with fake.fake_engine() as running:
        yield running


def test_an_engine_named_by_host_name_is_reached_and_only_it(engine):
    port = int(engine.url.rsplit(":", 1)[1].split("/")[0])
    log = network_guard.install(network_guard.NetworkLog())
    try:
        models = OpenAIClient(EngineConfig("named", f"http://localhost:{port}/v1")).list_models()
    finally:
        network_guard.uninstall(log)
    assert [m["id"] for m in models] == ["big-model"]
    events = log.events()
    assert events and all(e.allowed and e.purpose == "engine named" for e in events)
    assert {e.port for e in events} == {port}
    assert any(e.kind == "connect" and e.host in ("127.0.0.1", "::1") for e in events)


def test_stop_before_the_engine_sends_its_head_ends_the_stream_at_once():
    """An engine still evaluating a long prompt has sent nothing yet, not even its headers."""
    import socket
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    port, held = server.getsockname()[1], []
    accepting = threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True)
    accepting.start()
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        chunks = list(OpenAIClient(EngineConfig("slow", f"http://127.0.0.1:{port}/v1"))
                      .stream_chat({"model": "m", "messages": []}, cancel))
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        accepting.join(5)
        for connection in held:
            connection.close()
        server.close()
    assert chunks == [] and elapsed < 1.0, elapsed
