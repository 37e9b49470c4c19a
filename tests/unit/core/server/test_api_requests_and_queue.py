"""The API's request checks and its fair, bounded queue, without a model."""

from __future__ import annotations

import threading

import pytest

from desktop.core.server.api_errors import ApiError
from desktop.core.server.api_requests import ANY_TOOL, chat_request, completion_request, parse_json
from desktop.core.server.api_server import ServerStartError, check_bind, is_loopback
from desktop.core.server.jobs import ERROR, FairQueue, Job
from desktop.core.system.settings import GenerationSettings

BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def rejected(body: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        chat_request(body, GenerationSettings())
    return caught.value


def test_sampling_fields_map_onto_the_settings_and_the_rest_keep_the_persons_defaults():
    defaults = GenerationSettings(temperature=0.3, top_k=17, system_prompt="be brief", tools=["weather"])
    request = chat_request({**BASE, "temperature": 1.2, "seed": 4, "max_tokens": 9, "stop": "END"}, defaults)
    s = request.settings
    assert (s.temperature, s.seed, s.max_tokens, s.top_k) == (1.2, 4, 9, 17)
    assert s.system_prompt == "" and s.tools == []  # the client's messages say it all
    assert request.stop == ["END"] and request.max_tokens_given


@pytest.mark.parametrize(("field", "value"), [("temperature", 3), ("top_p", "high"), ("max_tokens", 0),
                                              ("seed", 1.5), ("n", 2), ("stop", [""]), ("stream", "yes")])
def test_a_bad_field_is_a_400_naming_it(field, value):
    error = rejected({**BASE, field: value})
    assert error.status == 400 and error.param in (field, "logprobs")


def test_messages_text_parts_developer_role_and_tool_calls_are_read():
    request = chat_request({"model": "m", "messages": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}]}, GenerationSettings())
    system, user, assistant, tool = request.messages
    assert system == {"role": "system", "content": "rules"} and user["content"] == "ab"
    assert assistant["tool_calls"][0]["function"] == {"name": "f", "arguments": {"x": 1}}
    assert tool["tool_call_id"] == "c1" and tool["content"] == "42"
    assert rejected({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}).status == 400


def test_tool_choice_required_names_the_one_tool_or_any_of_several():
    one = chat_request({**BASE, "tools": [WEATHER], "tool_choice": "required"}, GenerationSettings())
    assert one.required_tool == "get_weather"
    other = {"type": "function", "function": {"name": "get_time"}}
    several = chat_request({**BASE, "tools": [WEATHER, other], "tool_choice": "required"}, GenerationSettings())
    assert several.required_tool == ANY_TOOL
    named = chat_request({**BASE, "tools": [WEATHER, other], "tool_choice": {"type": "function",
                                                                             "function": {"name": "get_time"}}},
                         GenerationSettings())
    assert named.required_tool == "get_time"
    assert chat_request({**BASE, "tools": [WEATHER], "tool_choice": "none"}, GenerationSettings()).tools == []
    assert rejected({**BASE, "tools": [WEATHER], "tool_choice": {"function": {"name": "nope"}}}).param == "tool_choice"


def test_thinking_switch_and_effort():
    on = chat_request({**BASE, "chat_template_kwargs": {"enable_thinking": False}, "reasoning_effort": "high"},
                      GenerationSettings())
    assert on.think is False and on.effort == "high"
    assert rejected({**BASE, "reasoning_effort": "max"}).param == "reasoning_effort"


def test_completions_default_to_16_tokens_and_bad_json_is_a_400():
    assert completion_request({"model": "m", "prompt": "Once"}, GenerationSettings()).settings.max_tokens == 16
    with pytest.raises(ApiError) as caught:
        parse_json(b"{nope")
    assert caught.value.status == 400 and "not valid JSON" in caught.value.message


def test_the_queue_takes_clients_in_turn_and_refuses_beyond_its_limit():
    jobs = FairQueue(limit=4)
    for name in ("a1", "a2", "a3"):
        jobs.put(Job(name, client="a"))
    jobs.put(Job("b1", client="b"))
    with pytest.raises(ApiError) as full:
        jobs.put(Job("c1", client="c"))
    assert full.value.status == 429 and full.value.body()["error"]["code"] == "queue_full"
    assert [jobs.take(0).request for _ in range(4)] == ["a1", "b1", "a2", "a3"]  # b does not wait for all of a


def test_a_job_cancelled_while_waiting_is_dropped_and_told():
    jobs = FairQueue()
    gone, kept = Job("gone", client="a"), Job("kept", client="a")
    jobs.put(gone)
    jobs.put(kept)
    gone.cancel.set()
    assert jobs.take(0) is kept
    assert gone.events.get_nowait()[0] == ERROR


def test_closing_wakes_the_taker_and_fails_what_waits():
    idle = FairQueue()
    taken: list = []
    thread = threading.Thread(target=lambda: taken.append(idle.take()))
    thread.start()
    idle.close()
    thread.join(5)
    assert taken == [None]
    busy = FairQueue()
    late = Job("late", client="b")
    busy.put(late)
    busy.close()
    assert late.events.get_nowait()[1].status == 503 and busy.take(0) is None


def test_listening_beyond_loopback_needs_a_key():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_bind("127.0.0.1", "")
    check_bind("0.0.0.0", "key")
    with pytest.raises(ServerStartError, match="set an API key first"):
        check_bind("0.0.0.0", "")
