"""Tool calls per model family, read the same wherever token boundaries fall.

Every fixture template that declares tools (llama.cpp's ``models/templates``) gets a known call
format. Each family's realistic output (a single call, parallel calls, nested JSON arguments,
text before the call, a fake call inside the thinking) is tokenized with the family's real
vocab-only tokenizer, fed token by token through the thinking parser and the call scanner as the
runtime does, and split in two at every character: the calls always come out the same, and a
call written while thinking is never taken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.core.engine.output_parser import ANSWER, OutputParser
from desktop.core.engine.thinking import detect_format
from desktop.core.tools.call_formats import detect_call_format, parse_calls, required_call_shape
from desktop.core.tools.call_scanner import CallScanner
from desktop.core.tools.specs import TOOL_CALL, ToolSpec
from tests.unit.core.engine.test_output_parser import token_texts

TEMPLATES = Path(__file__).resolve().parents[3] / "fixtures" / "templates"
NESTED = {"query": {"city": "Zürich", "days": [1, 2], "units": {"temp": "C"}}, "verbose": True}

FAMILIES = {
    "Qwen-Qwen2.5-7B-Instruct": "hermes", "Qwen-Qwen3-0.6B": "hermes", "Qwen-QwQ-32B": "hermes",
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": "hermes", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": "hermes",
    "ibm-granite-granite-4.0.jinja"[:-6]: "hermes", "Qwen3-Coder": "hermes", "GLM-4.6": "hermes",
    "meta-llama-Llama-3.1-8B-Instruct": "llama3", "meta-llama-Llama-3.2-3B-Instruct": "llama3",
    "meta-llama-Llama-3.3-70B-Instruct": "llama3",
    "mistralai-Mistral-Nemo-Instruct-2407": "mistral", "Mistral-Small-3.2-24B-Instruct-2506": "mistral",
    "unsloth-mistral-Devstral-Small-2507": "mistral", "openai-gpt-oss-120b": "harmony",
    "ibm-granite-granite-3.3-2B-Instruct": "granite", "CohereForAI-c4ai-command-r7b-12-2024-tool_use": "command_r",
    "CohereForAI-c4ai-command-r-plus-tool_use": "command_r", "llama-cpp-deepseek-r1": "deepseek",
    "moonshotai-Kimi-K2": "kimi", "google-gemma-4-31B-it": "gemma",
}

W = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
N = '{"name": "search", "arguments": ' + json.dumps(NESTED, ensure_ascii=False) + "}"
PARIS, NEST = ("get_weather", {"city": "Paris"}), ("search", NESTED)
# (template, vocab, output, expected calls (name, arguments), expected answer text)
CASES = {
    "hermes-single": ("Qwen-Qwen2.5-7B-Instruct", "qwen2", f"Let me check.\n<tool_call>\n{W}\n</tool_call>",
                      [PARIS], "Let me check."),
    "hermes-parallel-nested": ("Qwen-Qwen2.5-7B-Instruct", "qwen2",
                               f"<tool_call>\n{W}\n</tool_call>\n<tool_call>\n{N}\n</tool_call>", [PARIS, NEST], ""),
    "qwen3-call-in-thinking": ("Qwen-Qwen3-0.6B", "qwen35",
                               f"<think>\nMaybe <tool_call>\n{N}\n</tool_call> is wrong.\n</think>\n\n"
                               f"<tool_call>\n{W}\n</tool_call>", [PARIS], ""),
    "hermes-on-llama": ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "llama-bpe",
                        f"<tool_call>\n{N}\n</tool_call>", [NEST], ""),
    "qwen3-coder-xml": ("Qwen3-Coder", "qwen2", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
                        "</parameter>\n</function>\n</tool_call>", [PARIS], ""),
    "glm": ("GLM-4.6", "qwen2", "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
            "</tool_call>", [PARIS], ""),
    "llama3-json": ("meta-llama-Llama-3.1-8B-Instruct", "llama-bpe",
                    '{"name": "search", "parameters": ' + json.dumps(NESTED, ensure_ascii=False) + "}", [NEST], ""),
    "llama3-python-tag": ("meta-llama-Llama-3.1-8B-Instruct", "llama-bpe",
                          '<|python_tag|>get_weather.call(city="Paris")', [PARIS], ""),
    "mistral-nemo": ("mistralai-Mistral-Nemo-Instruct-2407", "llama-spm",
                     f'[TOOL_CALLS][{W[:-1]}, "id": "a1b2c3d4e"}}, {N}]', [PARIS, NEST], ""),
    "mistral-args": ("Mistral-Small-3.2-24B-Instruct-2506", "llama-spm",
                     '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]search[ARGS]'
                     + json.dumps(NESTED, ensure_ascii=False), [PARIS, NEST], ""),
    "harmony": ("openai-gpt-oss-120b", "harmony",
                "<|channel|>analysis<|message|>Call to=functions.search? No, weather.<|end|>"
                "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
                '<|message|>{"city": "Paris"}<|call|>', [PARIS], ""),
    "granite": ("ibm-granite-granite-3.3-2B-Instruct", "gpt-2", f"<|tool_call|>[{W}, {N}]", [PARIS, NEST], ""),
    "command-r7b": ("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "command-r",
                    '<|START_THINKING|>I will look it up.<|END_THINKING|><|START_ACTION|>[{"tool_call_id": "0", '
                    '"tool_name": "get_weather", "parameters": {"city": "Paris"}}]<|END_ACTION|>', [PARIS], ""),
    "deepseek-r1": ("llama-cpp-deepseek-r1", "deepseek-llm",
                    "The user wants the weather; call get_weather.\n</think>\n\n"
                    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
                    '{"city": "Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>', [PARIS], ""),
    "kimi": ("moonshotai-Kimi-K2", "gpt-2", "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
             '<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>', [PARIS], ""),
}


def filled(schema: dict, name: str, arguments: dict) -> dict:
    """An object of a required call's schema: the call (its name and arguments), or where the
    name stands in the markers, the arguments alone."""
    props = schema.get("properties", {})
    name_key = next((k for k in ("name", "tool_name") if props.get(k, {}).get("const") == name), None)
    if name_key is None:
        return arguments
    return {name_key: name, next(k for k in ("arguments", "parameters") if k in props): arguments}


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text()


def run(name: str, pieces: list[str]) -> tuple[list[tuple[str, dict]], str, list[str]]:
    """Feed as the runtime does: thinking parser, then the scanner over the answer text."""
    source = template(name)
    parser, fmt = OutputParser(detect_format(source), True), detect_call_format(source)
    scanner = None if fmt.kind == "harmony" else CallScanner(fmt)
    out = []
    for piece in [*[p for text in pieces for p in parser.feed(text)], *parser.finish()]:
        out += scanner.feed(piece.text) if scanner is not None and piece.kind == ANSWER else [piece]
    out += scanner.finish() if scanner is not None else []
    calls = [c for p in out if p.kind == TOOL_CALL for c in parse_calls(fmt, p.text)]
    assert all(not c.error for c in calls), calls
    answer = "".join(p.text for p in out if p.kind == ANSWER).strip()
    return [(c.name, c.arguments) for c in calls], answer, [c.id for c in calls]


def test_every_template_that_declares_tools_has_a_known_format():
    declared = sorted(p.stem for p in TEMPLATES.glob("*.jinja") if "tools" in p.read_text())
    kinds = {name: detect_call_format(template(name)).kind for name in declared}
    print("\n".join(f"{kind:10} {name}" for name, kind in sorted(kinds.items(), key=lambda kv: kv[1])))
    assert len(declared) >= 60 and all(kind != "none" for kind in kinds.values())
    for name, kind in FAMILIES.items():
        assert kinds[name] == kind, name
    assert detect_call_format(template("google-gemma-2-2b-it")).kind == "none"


@pytest.mark.parametrize("case", sorted(CASES))
def test_calls_are_the_same_at_every_boundary(case: str):
    name, vocab, text, calls, answer = CASES[case]
    expected = (calls, answer)
    assert run(name, [text])[:2] == expected
    tokens = token_texts(vocab, text)
    assert len(tokens) > 1
    assert run(name, tokens)[:2] == expected
    for i in range(len(text) + 1):
        assert run(name, [text[:i], text[i:]])[:2] == expected, f"split at {i}"


def test_the_ids_the_model_gave_are_kept():
    _calls, _answer, ids = run("mistralai-Mistral-Nemo-Instruct-2407", [CASES["mistral-nemo"][2]])
    assert ids[0] == "a1b2c3d4e"
    assert run("CohereForAI-c4ai-command-r7b-12-2024-tool_use", [CASES["command-r7b"][2]])[2] == ["0"]


@pytest.mark.parametrize("text", ["The set {1, 2} has two elements.", "```python\ndef f():\n    return {}\n```",
                                  '{"answer": 42}', "Use <tool> tags, not <tool_c.", "[1, 2, 3]"])
@pytest.mark.parametrize("name", ["Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.1-8B-Instruct", "Apertus-8B-Instruct"])
def test_ordinary_answers_stay_answers(name: str, text: str):
    calls, answer, _ids = run(name, list(text))
    assert calls == [] and answer == text.strip()


def test_a_call_with_bad_json_says_why():
    fmt = detect_call_format(template("Qwen-Qwen2.5-7B-Instruct"))
    [call] = parse_calls(fmt, '<tool_call>\n{"name": "get_weather", "arguments": {"city": Paris}}\n</tool_call>')
    assert call.name == "get_weather" and "not valid JSON" in call.error and call.raw
    [unnamed] = parse_calls(fmt, '<tool_call>{"arguments": {}}</tool_call>')
    assert "no tool name" in unnamed.error


def test_a_call_cut_off_by_the_end_is_still_handed_over():
    fmt = detect_call_format(template("Qwen-Qwen2.5-7B-Instruct"))
    scanner = CallScanner(fmt)
    pieces = scanner.feed('<tool_call>\n{"name": "get_weather", "argu') + scanner.finish()
    assert [p.kind for p in pieces] == [TOOL_CALL] and parse_calls(fmt, pieces[0].text)[0].error


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_required_call_shape_reads_back_as_the_call(name: str):
    fmt = detect_call_format(template(name))
    spec = ToolSpec("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    prefix, schema, suffix = required_call_shape(fmt, spec)
    text = prefix + json.dumps(filled(schema, "get_weather", {"city": "Paris"})) + suffix
    assert [(c.name, c.arguments) for c in parse_calls(fmt, text)] == [PARIS]
