"""The remote-engine client against a real (fake, misbehaving) engine on 127.0.0.1: the answer's
pieces and figures, tool calls from their fragments, one sentence per failure, Stop that closes a
silent stream at once, verified TLS, and the network guard letting through that engine only."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from desktop.core.engine.answer_loop import ThinkingRequest
from desktop.core.remote.engine_config import EngineConfig, normalize_base_url
from desktop.core.remote.openai_client import OpenAIClient, RemoteError
from desktop.core.remote.remote_runtime import RemoteRuntime
from desktop.core.system import network_guard
from desktop.core.system.settings import GenerationSettings
from desktop.core.text.pieces import ANSWER, REASONING, TOOL_CALL
from desktop.core.tools.specs import ToolSpec
from tests.helpers import fake_engine as fake

ASK = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def engine():
    with fake.fake_engine() as running:
        yield running


def runtime(engine, **kwargs) -> RemoteRuntime:
    return RemoteRuntime(EngineConfig("team", engine.url, **kwargs), "big-model")


def test_the_answer_streams_in_pieces_with_the_engines_figures(engine):
    remote = runtime(engine)
    pieces = list(remote.stream_chat(ASK, GenerationSettings(seed=5, max_tokens=9)))
    assert [(p.kind, p.text) for p in pieces] == [(ANSWER, "Hello"), (ANSWER, " there")]
    stats = remote.last_stats
    assert (stats.prompt_tokens, stats.completion_tokens, stats.decode_tokens_per_s) == (7, 2, 55.5)
    assert stats.stop_reason == "stop" and stats.time_to_first_token_s > 0
    sent = engine.requests[-1]
    assert sent["seed"] == 5 and sent["max_tokens"] == 9 and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


def test_reasoning_is_read_from_either_field_and_thinking_off_is_asked_for(engine):
    engine.behaviour = "reasoning"
    remote = runtime(engine)
    pieces = list(remote.stream_chat(ASK, GenerationSettings(think="off"), thinking=ThinkingRequest(think=False)))
    assert [(p.kind, p.text) for p in pieces if p.kind == REASONING] == [(REASONING, "Let me think. "),
                                                                         (REASONING, "Done.")]
    assert engine.requests[-1]["chat_template_kwargs"] == {"enable_thinking": False}


def test_tool_calls_are_assembled_from_their_fragments(engine):
    from desktop.core.engine.tool_use import ToolRequest

    engine.behaviour = "tools"
    remote = runtime(engine)
    offer = ToolRequest([ToolSpec("get_weather", "Weather", {"type": "object"})], "get_weather")
    pieces = list(remote.stream_chat(ASK, GenerationSettings(), tools=offer))
    assert pieces[-1].kind == TOOL_CALL
    assert remote.last_stats.tool_calls == [{"id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}}]
    sent = engine.requests[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(("behaviour", "words"), [
    ("401", "refused the API key (401): told to answer 401"),
    ("404", "has no model 'big-model' (404)"),
    ("429", "is busy or limits requests (429)"),
    ("500", "failed on its side (500): told to answer 500"),
    ("cut", "closed the stream mid-answer"),
    ("malformed", "sent a malformed stream"),
])
def test_each_failure_is_one_sentence_naming_the_engine_and_the_cause(engine, behaviour, words):
    engine.behaviour = behaviour
    remote = runtime(engine)
    got = []
    with pytest.raises(RemoteError) as failure:
        got.extend(remote.stream_chat(ASK, GenerationSettings()))
    message = str(failure.value)
    assert message.startswith("The engine 'team' ") and words in message and "\n" not in message
    if behaviour in ("cut", "malformed"):  # what came before the failure stands
        assert "".join(p.text for p in got) == "Hello there"


def test_stop_closes_a_silent_stream_at_once_and_silence_is_a_timeout(engine):
    engine.behaviour = "hang"
    remote = runtime(engine)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    assert list(remote.stream_chat(ASK, GenerationSettings(), cancel)) == []
    assert time.perf_counter() - started < 1.0 and remote.last_stats.stop_reason == "cancelled"
    client = OpenAIClient(EngineConfig("team", engine.url), idle_timeout=0.5)
    with pytest.raises(RemoteError, match=r"^The engine 'team' did not answer within 0.5 s\.$"):
        list(client.stream_chat({"model": "big-model", "messages": ASK}, threading.Event()))


def test_a_refused_connection_and_the_model_list(engine):
    assert OpenAIClient(EngineConfig("team", engine.url)).list_models()[0]["max_model_len"] == 32768
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(RemoteError, match="refused the connection at 127.0.0.1:.*is it running"):
        OpenAIClient(EngineConfig("gone", f"http://127.0.0.1:{closed}/v1")).list_models()


def test_base_urls_are_normalized_and_bad_ones_explained():
    assert normalize_base_url("http://gpu:8000") == "http://gpu:8000/v1"
    assert normalize_base_url("https://gpu.example.org/v1/") == "https://gpu.example.org/v1"
    assert normalize_base_url("localhost:11434") == "http://localhost:11434/v1"
    with pytest.raises(ValueError, match="http:// or https://"):
        normalize_base_url("ftp://gpu")


def test_the_network_guard_lets_the_client_reach_its_engine_only(engine):
    log = network_guard.install(network_guard.NetworkLog())
    try:
        list(runtime(engine).stream_chat(ASK, GenerationSettings()))
        with pytest.raises(network_guard.NetworkRefused), socket.create_connection(("127.0.0.1", 9), 1):
            pass  # nobody asked for this one
    finally:
        network_guard.uninstall(log)
    allowed = {(e.host, e.port, e.purpose) for e in log.events() if e.allowed and e.kind == "connect"}
    assert allowed == {("127.0.0.1", engine.port, "engine team")}
    assert [(e.port, e.allowed) for e in log.events() if e.port == 9] == [(9, False)]  # refused, and listed


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_is_verified_and_a_private_ca_file_is_accepted(certificate):
    cert, key = certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake._Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.engine = fake.FakeEngine(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/v1"
    try:
        with pytest.raises(RemoteError, match="failed the TLS certificate check .*give its CA file"):
            OpenAIClient(EngineConfig("secure", url)).list_models()
        assert OpenAIClient(EngineConfig("secure", url, ca_file=str(cert))).list_models()[0]["id"] == "big-model"
    finally:
        server.shutdown()
        server.server_close()
