"""`cove serve` driven by the official `openai` Python client, with the real SmolLM2 (and its
weights under Qwen 2.5's and QwQ's templates, for tool calls and reasoning): real processes on
127.0.0.1, no special-casing of the client."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from desktop.core.system.paths import AppPaths, app_paths
from tests.helpers.cove_server import cove_serve, serve_command
from tests.helpers.templated_model import with_template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SMOL = "SmolLM2-135M-Instruct.Q4_1"
HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]
LONG = [{"role": "user", "content": "List 100 animals, one per line, numbered."}]  # runs to max_tokens


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, starter_model: Path, probed_cache: Path) -> AppPaths:
    paths = app_paths(tmp_path_factory.mktemp("serve") / "cove").ensure()
    shutil.copy(probed_cache, paths.probe_file)
    with_template(starter_model, "Qwen-Qwen2.5-7B-Instruct", paths.models_dir / "smol-qwen25.gguf")
    with_template(starter_model, "Qwen-QwQ-32B", paths.models_dir / "smol-qwq.gguf")
    return paths


@pytest.fixture(scope="module")
def server(home: AppPaths):
    with cove_serve(home, "--queue-limit", "1", "--ctx", "2048", "--threads", "2") as served:
        yield served


@pytest.fixture
def client(server) -> openai.OpenAI:
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as api:
        yield api


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_model_list_names_the_library_models(client: openai.OpenAI):
    ids = {model.id for model in client.models.list()}
    assert {SMOL, "smol-qwen25", "smol-qwq"} <= ids


def test_a_chat_completion_answers_with_usage(client: openai.OpenAI):
    reply = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=24, temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5 and 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_a_streamed_chat_sends_the_same_answer_in_pieces_and_the_usage_last(client: openai.OpenAI):
    whole = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=20, temperature=0)
    chunks = list(client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=20, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([t for t in texts if t]) > 3  # streamed token by token, not in one piece
    assert "".join(texts) == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        [whole.choices[0].finish_reason]


def test_a_seeded_answer_repeats_and_max_tokens_bounds_it(client: openai.OpenAI):
    def ask(seed: int) -> openai.types.chat.ChatCompletion:
        return client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=12, temperature=1.0, seed=seed)

    first, again = ask(7), ask(7)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.usage.completion_tokens == 12 and first.choices[0].finish_reason == "length"


def test_stop_ends_the_answer_before_the_stop_string(client: openai.OpenAI):
    full = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=30, temperature=0)
    text = full.choices[0].message.content
    words = text.split()
    assert len(words) > 4, text
    stop = " " + words[3]
    stopped = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=30, temperature=0, stop=[stop])
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def test_a_text_completion_continues_the_prompt(client: openai.OpenAI):
    reply = client.completions.create(model=SMOL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert reply.choices[0].text.strip() and reply.usage.completion_tokens <= 8
    streamed = client.completions.create(model=SMOL, prompt="The capital of France is", max_tokens=8, temperature=0,
                                         stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


def test_each_bad_request_gets_its_status_in_openais_shape(client: openai.OpenAI, server):
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert unknown.value.body["code"] == "model_not_found" and SMOL in unknown.value.body["message"]
    with pytest.raises(openai.BadRequestError) as field:
        client.chat.completions.create(model=SMOL, messages=HELLO, temperature=5)
    assert field.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model=SMOL, messages=[])
    assert empty.value.body["param"] == "messages"
    status, body = post(f"{server.url}/chat/completions", b'{"model": "x", "messages": [')
    assert status == 400 and "not valid JSON" in body["error"]["message"] and body["error"]["type"]
    long = [{"role": "user", "content": "sea " * 2500}]
    with pytest.raises(openai.BadRequestError) as overflow:
        client.chat.completions.create(model=SMOL, messages=long, max_tokens=100)
    error = overflow.value.body
    assert error["code"] == "context_length_exceeded" and "maximum context length is 2048 tokens" in error["message"]
    assert "100 in the completion" in error["message"]
    status, body = post(f"{server.url}/chat/completions", b'{"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}')
    assert status == 413 and body["error"]["code"] == "body_too_large"


def _stream_in_thread(url: str, results: dict, name: str, max_tokens: int, started: threading.Event | None = None,
                      messages: list = HELLO):
    def run() -> None:
        with openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120) as api:
            try:
                text = []
                for chunk in api.chat.completions.create(model=SMOL, messages=messages, max_tokens=max_tokens,
                                                         temperature=0, stream=True):
                    if chunk.choices and chunk.choices[0].delta.content:
                        text.append(chunk.choices[0].delta.content)
                        if started is not None:
                            started.set()
                results[name] = "".join(text)
            except openai.APIStatusError as exc:
                results[name] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_clients_at_once_are_both_served_and_a_full_queue_gives_429(client: openai.OpenAI, server):
    results: dict = {}
    streaming = threading.Event()
    first = _stream_in_thread(server.url, results, "first", 300, streaming, LONG)
    assert streaming.wait(60)
    second = _stream_in_thread(server.url, results, "second", 20)
    time.sleep(0.5)  # the second waits in the queue (its limit is 1)...
    with pytest.raises(openai.RateLimitError) as busy:  # ...so a third is refused
        client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=5)
    assert busy.value.body["code"] == "queue_full"
    first.join(120)
    second.join(120)
    assert isinstance(results["first"], str) and results["first"].strip()
    assert isinstance(results["second"], str) and results["second"].strip()


def test_a_client_that_disconnects_mid_stream_frees_the_model_within_a_second(client: openai.OpenAI):
    stream = client.chat.completions.create(model=SMOL, messages=LONG, max_tokens=1500, temperature=0,
                                            stream=True)
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 3:
            break
    stream.close()
    gone = time.perf_counter()
    after = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=1, temperature=0, stream=True)
    next(iter(after))  # the role chunk comes once the request runs
    waited = time.perf_counter() - gone
    after.close()
    assert waited < 1.0, f"the next request started {waited:.2f} s after the disconnect"


def test_tools_and_tool_choice_required_return_tool_calls(client: openai.OpenAI):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object", "properties": {
                                                   "city": {"type": "string"}}, "required": ["city"]}}}]
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(model="smol-qwen25", messages=ask, tools=tools, tool_choice="required",
                                           max_tokens=60, temperature=0)
    [call] = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str) and call.id
    streamed = [c for c in client.chat.completions.create(model="smol-qwen25", messages=ask, tools=tools,
                                                          tool_choice="required", max_tokens=60, temperature=0,
                                                          stream=True) if c.choices]
    deltas = [d for c in streamed for d in (c.choices[0].delta.tool_calls or [])]
    assert [d.index for d in deltas] == [0] and deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments) == json.loads(call.function.arguments)
    answer = ask + [reply.choices[0].message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 °C"}]
    after = client.chat.completions.create(model="smol-qwen25", messages=answer, tools=tools, max_tokens=30,
                                           temperature=0)
    assert after.choices[0].message.content.strip()


def test_a_thinking_model_returns_its_reasoning_apart(client: openai.OpenAI):
    think = {"chat_template_kwargs": {"enable_thinking": True}}
    reply = client.chat.completions.create(model="smol-qwq", messages=HELLO, max_tokens=24, temperature=0,
                                           extra_body=think)
    message = reply.model_dump()["choices"][0]["message"]
    assert message["reasoning_content"].strip()
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0
    streamed = [c.model_dump() for c in client.chat.completions.create(model="smol-qwq", messages=HELLO,
                                                                       max_tokens=24, temperature=0, stream=True,
                                                                       extra_body=think)]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in streamed if c["choices"])
    assert reasoning == message["reasoning_content"]


def test_listening_beyond_this_computer_needs_an_api_key(home: AppPaths, tmp_path: Path):
    command, env = serve_command(home, "--host", "0.0.0.0")
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1 and "set an API key first" in refused.stderr
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    with cove_serve(home, "--host", "0.0.0.0", "--api-key-file", str(key), "--model", SMOL) as served:
        local = served.url.replace("0.0.0.0", "127.0.0.1")
        with openai.OpenAI(base_url=local, api_key="wrong", max_retries=0) as wrong, pytest.raises(
                openai.AuthenticationError):
            wrong.models.list()
        with openai.OpenAI(base_url=local, api_key="s3cret", max_retries=0) as right:
            assert [m.id for m in right.models.list()] == [SMOL]
        status, _ = post(f"{local}/chat/completions", json.dumps({"model": SMOL, "messages": HELLO,
                                                                   "max_tokens": 2}).encode(), {"x-api-key": "s3cret"})
        assert status == 200
