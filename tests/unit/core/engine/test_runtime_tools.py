"""Tools in the real runtime, with SmolLM2's weights: a tool-calling template (Qwen2.5's, Hermes
style) gets the tools in its ``tools`` variable and the results back as ``tool`` messages; a
required tool constrains sampling with a grammar built from the tool's JSON schema, so even this
135M model's call always parses; a template without tools (SmolLM2's own) gets them in the
system message, with the same guarantee."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.core.engine.runtime import LoadConfig, Runtime
from desktop.core.engine.tool_use import ToolRequest, call_grammar_text
from desktop.core.system.settings import GenerationSettings
from desktop.core.tools.specs import TOOL_CALL, ToolSpec
from tests.helpers.templated_model import with_template

WEATHER = ToolSpec("get_weather", "The weather in a city today.",
                   {"type": "object", "properties": {"city": {"type": "string"},
                                                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city", "unit"]}, server="weather")
ADD = ToolSpec("add", "Add two integers.", {"type": "object", "properties": {"a": {"type": "integer"},
                                                                           "b": {"type": "integer"}},
                                            "required": ["a", "b"]}, server="maths")
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def hermes(starter_model: Path, tmp_path_factory: pytest.TempPathFactory):
    model = with_template(starter_model, "Qwen-Qwen2.5-7B-Instruct",
                          tmp_path_factory.mktemp("qwen25") / "smol-qwen25.gguf")
    rt = Runtime(model, LoadConfig(n_ctx=2048, n_threads=2))
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def plain(starter_model: Path):
    rt = Runtime(starter_model, LoadConfig(n_ctx=2048, n_threads=2))
    yield rt
    rt.close()


def greedy(max_tokens: int = 64) -> GenerationSettings:
    return GenerationSettings(temperature=0.0, seed=3, max_tokens=max_tokens)


def test_the_template_gets_the_tools_in_its_own_form(hermes: Runtime):
    assert hermes.tool_format.kind == "hermes"
    prompt, _tokens, _stop = hermes.render(QUESTION, {"tools": [WEATHER.for_template(), ADD.for_template()]})
    assert "<tools>" in prompt and '"name": "get_weather"' in prompt and '"name": "add"' in prompt
    assert '"enum": ["celsius", "fahrenheit"]' in prompt  # the JSON schema, whole
    assert "<tool_call>" in prompt  # the template tells the model how to call


@pytest.mark.parametrize("fixture", ["hermes", "plain"])
def test_a_required_tool_always_gives_a_call_that_parses(fixture: str, request: pytest.FixtureRequest):
    runtime: Runtime = request.getfixturevalue(fixture)
    pieces = list(runtime.stream_chat(QUESTION, greedy(), tools=ToolRequest([WEATHER, ADD], required="get_weather")))
    calls = runtime.last_stats.tool_calls
    assert [p.kind for p in pieces].count(TOOL_CALL) == 1, pieces
    assert len(calls) == 1 and calls[0]["name"] == "get_weather" and "error" not in calls[0], calls
    assert isinstance(calls[0]["arguments"]["city"], str)
    assert calls[0]["arguments"]["unit"] in ("celsius", "fahrenheit")  # the schema's enum holds
    assert calls[0]["id"]
    answer = "".join(p.text for p in pieces if p.kind == "answer")
    assert "<tool_call>" not in answer  # the call is not shown as text


def test_the_result_goes_back_and_the_model_answers(hermes: Runtime):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                             "arguments": {"city": "Paris", "unit": "celsius"}}}
    messages = [*QUESTION, {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "Sunny, 21 °C in Paris"}]
    prompt, _tokens, _stop = hermes.render(messages, {"tools": [WEATHER.for_template()]})
    assert "<tool_response>\nSunny, 21 °C in Paris\n</tool_response>" in prompt
    assert '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}' in prompt
    pieces = list(hermes.stream_chat(messages, greedy(40), tools=ToolRequest([WEATHER], take_calls=False)))
    assert "".join(p.text for p in pieces if p.kind == "answer").strip()
    assert hermes.last_stats.tool_calls == []  # plain text now


def test_the_grammar_is_the_family_markers_around_the_schema(hermes: Runtime):
    text = call_grammar_text(hermes.tool_format, WEATHER)
    assert text.startswith('root ::= "<tool_call>\\n" call-object "\\n</tool_call>"')
    assert "call-object ::=" in text and '"\\"celsius\\""' in text


def test_a_required_tool_that_is_not_offered_is_refused_clearly(hermes: Runtime):
    from desktop.core.engine.runtime import GenerationError

    with pytest.raises(GenerationError, match="required tool 'search'"):
        list(hermes.stream_chat(QUESTION, greedy(), tools=ToolRequest([WEATHER], required="search")))
