"""The call scanner over every family, and the families beyond the main ones.

Each family's realistic output is tokenized with a real vocab-only tokenizer (llama.cpp's; the
family's own where llama.cpp ships it, else GPT-2's), fed token by token (each token decoded with
its special tokens as text) through the thinking parser of the family's template and then the
scanner, as the runtime does, and split in two at every character: the calls are always the same.
Ordinary answers stay text and keep streaming; a marker that opens no call stays text.
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
from tests.unit.core.tools.test_call_formats import filled

TEMPLATES = Path(__file__).resolve().parents[3] / "fixtures" / "templates"
NESTED = {"query": {"city": "Zürich", "days": [1, 2], "units": {"temp": "C"}}, "verbose": True}
NESTED_JSON = json.dumps(NESTED, ensure_ascii=False)
PARIS, NEST = ("get_weather", {"city": "Paris"}), ("search", NESTED)
W = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
N = '{"name": "search", "arguments": ' + NESTED_JSON + "}"

# Families beyond the main ones (template -> (kind, opening marker)).
MORE_FAMILIES = {
    "unsloth-Apriel-1.5": ("hermes", "<tool_calls>"), "Apriel-1.6-15b-Thinker-fixed": ("hermes", "<tool_calls>"),
    "MiniMax-M1": ("hermes", "<tool_calls>"), "NVIDIA-Nemotron-Nano-v2": ("hermes", "<TOOLCALL>"),
    "ByteDance-Seed-OSS": ("hermes", "<seed:tool_call>"), "Apertus-8B-Instruct": ("hermes", "<|tools_prefix|>"),
    "Qwen3.5-4B": ("hermes", "<tool_call>"), "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": ("hermes", "<tool_call>"),
    "deepseek-ai-DeepSeek-V3.2": ("invoke", "<｜DSML｜function_calls>"),
    "deepseek-ai-DeepSeek-V4": ("invoke", "<｜DSML｜tool_calls>"),
    "MiniMax-M2": ("invoke", "<minimax:tool_call>"), "muse-glimmer": ("invoke", "<atem:function_calls>"),
    "LFM2.5-8B-A1B": ("pythonic", "<|tool_call_start|>"), "LFM2-8B-A1B": ("pythonic", "<|tool_call_start|>"),
    "meetkai-functionary-medium-v3.1": ("functionary", "<function="),
    "fireworks-ai-llama-3-firefunction-v2": ("firefunction", "functools["),
    "upstage-Solar-Open-100B": ("solar", "<|tool_call:begin|>"),
    "CohereForAI-c4ai-command-r-plus-tool_use": ("command_r", "Action:"),
}
NO_TOOLS = ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
            "deepseek-ai-DeepSeek-V3.1", "HuggingFaceTB-SmolLM3-3B", "microsoft-Phi-3.5-mini-instruct")
DSML = "｜DSML｜"

# (template, vocab, output, expected calls (name, arguments), expected answer text)
CASES = {
    "command-r-plus": ("CohereForAI-c4ai-command-r-plus-tool_use", "command-r",
                       'I will look it up.\nAction:\n```json\n[\n    {\n        "tool_name": "get_weather",\n'
                       '        "parameters": {"city": "Paris"}\n    },\n    {"tool_name": "search", "parameters": '
                       + NESTED_JSON + "}\n]\n```", [PARIS, NEST], "I will look it up."),
    "command-r-plus-one-line": ("CohereForAI-c4ai-command-r-plus-tool_use", "command-r",
                                'Action: ```json\n[{"tool_name": "get_weather", "parameters": {"city": "Paris"}}]\n```',
                                [PARIS], ""),
    "apriel": ("unsloth-Apriel-1.5", "gpt-2", f"Sure.\n<tool_calls>[{W}, {N}]</tool_calls>", [PARIS, NEST], "Sure."),
    "minimax-m1": ("MiniMax-M1", "gpt-2", f"<tool_calls>\n{W}\n{N}\n</tool_calls>", [PARIS, NEST], ""),
    "nemotron-v2": ("NVIDIA-Nemotron-Nano-v2", "gpt-2", f"Search it.\n</think>\n\n<TOOLCALL>[{N}]</TOOLCALL>", [NEST], ""),
    "apertus": ("Apertus-8B-Instruct", "gpt-2",
                '<|tools_prefix|>[{"get_weather": {"city": "Paris"}}, {"search": ' + NESTED_JSON + "}]<|tools_suffix|>",
                [PARIS, NEST], ""),
    "qwen35-xml-after-thinking": ("Qwen3.5-4B", "qwen35",
                                  f"<think>\nMaybe <tool_call>\n{N}\n</tool_call> first?\n</think>\n\nChecking.\n"
                                  "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
                                  "</function>\n</tool_call>\n<tool_call>\n<function=search>\n<parameter=query>\n"
                                  + json.dumps(NESTED["query"], ensure_ascii=False) + "\n</parameter>\n"
                                  "<parameter=verbose>\ntrue\n</parameter>\n</function>\n</tool_call>",
                                  [PARIS, NEST], "Checking."),
    "seed-oss": ("ByteDance-Seed-OSS", "gpt-2", "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Paris"
                 "</parameter>\n</function>\n</seed:tool_call>", [PARIS], ""),
    "dsml": ("deepseek-ai-DeepSeek-V4", "deepseek-llm",
             f'The user wants <{DSML}tool_calls> of two tools.</think>\n\n<{DSML}tool_calls>\n<{DSML}invoke name="get_weather">\n<{DSML}parameter name="city" string="true">'
             f'Paris</{DSML}parameter>\n</{DSML}invoke>\n<{DSML}invoke name="search">\n<{DSML}parameter name="query" '
             f'string="false">{json.dumps(NESTED["query"], ensure_ascii=False)}</{DSML}parameter>\n'
             f'<{DSML}parameter name="verbose" string="false">true</{DSML}parameter>\n</{DSML}invoke>\n'
             f"</{DSML}tool_calls>", [PARIS, NEST], ""),
    "minimax-m2": ("MiniMax-M2", "gpt-2", '<think>Weather.</think>\n<minimax:tool_call>\n<invoke name="get_weather">'
                   '<parameter name="city">Paris</parameter></invoke>\n</minimax:tool_call>', [PARIS], ""),
    "lfm2": ("LFM2.5-8B-A1B", "gpt-2", "<|tool_call_start|>[get_weather(city='Paris'), search(query="
             + json.dumps(NESTED["query"], ensure_ascii=False) + ", verbose=True)]<|tool_call_end|>", [PARIS, NEST], ""),
    "functionary": ("meetkai-functionary-medium-v3.1", "llama-bpe",
                    '<function=get_weather>{"city": "Paris"}</function>', [PARIS], ""),
    "firefunction": ("fireworks-ai-llama-3-firefunction-v2", "llama-bpe", f" functools[{W}, {N}]", [PARIS, NEST], ""),
    "solar": ("upstage-Solar-Open-100B", "gpt-2", '<|tool_call:begin|>a1<|tool_call:name|>get_weather'
              '<|tool_call:args|>{"city": "Paris"}<|tool_call:end|>', [PARIS], ""),
    "harmony-recipient-first": ("openai-gpt-oss-120b", "harmony",
                                ' to=functions.search<|channel|>commentary json<|message|>' + NESTED_JSON + "<|call|>",
                                [NEST], ""),
    "mistral-nemo-text-after": ("mistralai-Mistral-Nemo-Instruct-2407", "llama-spm",
                                f"[TOOL_CALLS][{W}] Let me know.", [PARIS], "Let me know."),
    "mistral-call-id": ("Mistral-Small-3.2-24B-Instruct-2506", "llama-spm",
                        '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}', [PARIS], ""),
    "granite-text-after": ("ibm-granite-granite-3.3-2B-Instruct", "gpt-2", f"<|tool_call|>[{N}]\nDone.", [NEST], "Done."),
    "llama3-type-function": ("meta-llama-Llama-3.2-3B-Instruct", "llama-bpe",
                             '{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}', [PARIS], ""),
    "json-fenced": ("tencent-Hy3", "gpt-2", f"```json\n{W}\n```", [PARIS], ""),
    "json-parallel-objects": ("GigaChat3-10B-A1.8B", "gpt-2", f"{W}\n{N}", [PARIS, NEST], ""),
}


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text()


def run(name: str, pieces: list[str]) -> tuple[list[tuple[str, dict]], str, CallScanner]:
    """Feed as the runtime does: the thinking parser, then the scanner over the answer text."""
    source = template(name)
    parser, fmt = OutputParser(detect_format(source), True), detect_call_format(source)
    scanner = CallScanner(fmt)
    out = []
    for piece in [*[p for text in pieces for p in parser.feed(text)], *parser.finish()]:
        out += scanner.feed(piece.text) if piece.kind == ANSWER else [piece]
    out += scanner.finish()
    assert all(p.text for p in out)
    calls = [c for p in out if p.kind == TOOL_CALL for c in parse_calls(fmt, p.text)]
    assert all(not c.error for c in calls), calls
    return [(c.name, c.arguments) for c in calls], "".join(p.text for p in out if p.kind == ANSWER).strip(), scanner


def test_the_kind_of_every_template():
    table = {p.stem: detect_call_format(p.read_text()) for p in sorted(TEMPLATES.glob("*.jinja"))}
    print("\n" + "\n".join(f"{f.kind:12} {f.open!r:32} {name}" for name, f in sorted(table.items())))
    for name, (kind, opening) in MORE_FAMILIES.items():
        assert (table[name].kind, table[name].open) == (kind, opening), name
    assert all(table[name].kind == "none" for name in NO_TOOLS)  # no ``tools``: Cove describes them itself
    assert table["MiniMax-M3"].kind == "json"  # its nested XML arguments are not read


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


def test_calls_are_numbered_unless_the_model_gave_an_id():
    *_, scanner = run("Qwen-Qwen2.5-7B-Instruct", [f"<tool_call>\n{W}\n</tool_call>\n<tool_call>\n{N}\n</tool_call>"])
    assert [c.id for c in scanner.calls] == ["call_1", "call_2"]
    *_, scanner = run("mistralai-Mistral-Nemo-Instruct-2407", [f'[TOOL_CALLS][{W[:-1]}, "id": "a1b2c3d4e"}}, {N}]'])
    assert [c.id for c in scanner.calls] == ["a1b2c3d4e", "call_2"]
    *_, scanner = run("moonshotai-Kimi-K2", ['<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0'
                                            '<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|>'
                                            "<|tool_calls_section_end|>"])
    assert [c.id for c in scanner.calls] == ["functions.get_weather:0"]
    *_, scanner = run("upstage-Solar-Open-100B", [CASES["solar"][2]])
    assert [c.id for c in scanner.calls] == ["a1"]


ORDINARY = ["[1] Smith, 2020, and [2] Jones.", '{"city": "Paris", "population": 2102650}', "{} is an empty object.",
            "```json\n{\"city\": \"Paris\"}\n```", "```python\nprint({'a': 1})\n```", '[{"city": "Paris"}]',
            "Action: none needed, the answer is 4.", "Python's functools[0] is not a thing.",
            "Use <tool> tags, not <tool_c.", "x = {a: 1}"]


@pytest.mark.parametrize("text", ORDINARY)
@pytest.mark.parametrize("name", ["meta-llama-Llama-3.1-8B-Instruct", "tencent-Hy3", "CohereForAI-c4ai-command-r-plus-tool_use",
                                  "fireworks-ai-llama-3-firefunction-v2", "Qwen-Qwen2.5-7B-Instruct"])
def test_ordinary_answers_stay_answers(name: str, text: str):
    for pieces in ([text], list(text)):
        calls, answer, scanner = run(name, pieces)
        assert calls == [] and answer == text.strip() and scanner.calls == []


@pytest.mark.parametrize("name", ["meta-llama-Llama-3.1-8B-Instruct", "tencent-Hy3"])
def test_an_answer_that_only_starts_like_json_keeps_streaming(name: str):
    scanner = CallScanner(detect_call_format(template(name)))
    for text, shown in (('{"city": "Paris", ', '{"city": "Paris", '), ("[1] Smith", "[1] Smith"),
                        ("```json\n[3, ", "```json\n[3, ")):
        scanner = CallScanner(scanner.fmt)
        assert "".join(p.text for p in scanner.feed(text)) == shown
    held = CallScanner(scanner.fmt)
    assert held.feed('{"name": "get_weather", "argu') == []  # may still be a call: held


def test_plain_text_streams_at_once():
    scanner = CallScanner(detect_call_format(template("Qwen-Qwen3-0.6B")))
    assert [p.text for p in scanner.feed("The weather in Paris is sunny, 21 °C.")] == [
        "The weather in Paris is sunny, 21 °C."]
    assert [p.text for p in scanner.feed(" Hold <tool")] == [" Hold "]  # the marker's start waits
    assert [p.text for p in scanner.feed("s> back")] == ["<tools> back"]


def test_broken_calls_say_why():
    fmt = detect_call_format(template("unsloth-Apriel-1.5"))
    [call] = parse_calls(fmt, '<tool_calls>[{"name": "get_weather", "arguments": {"city": Paris}}]</tool_calls>')
    assert call.name == "get_weather" and "not valid JSON" in call.error and call.raw
    cut = CallScanner(detect_call_format(template("meta-llama-Llama-3.1-8B-Instruct")))
    pieces = cut.feed('{"name": "get_weather", "parameters": {"city": "Par') + cut.finish()
    assert [p.kind for p in pieces] == [TOOL_CALL] and cut.calls[0].error and cut.calls[0].name == "get_weather"
    open_mistral = CallScanner(detect_call_format(template("Mistral-Small-3.2-24B-Instruct-2506")))
    pieces = open_mistral.feed('[TOOL_CALLS]get_weather[ARGS]{"city": ') + open_mistral.finish()
    assert [p.kind for p in pieces] == [TOOL_CALL] and "not valid JSON" in open_mistral.calls[0].error
    [pythonic] = parse_calls(detect_call_format(template("LFM2.5-8B-A1B")), "<|tool_call_start|>[get_weather(city=]")
    assert pythonic.error


def test_harmony_calls_come_from_the_output_parser_only():
    fmt = detect_call_format(template("openai-gpt-oss-120b"))
    scanner = CallScanner(fmt)
    assert scanner.feed('<tool_call>{"name": "x", "arguments": {}}</tool_call>')[0].kind == ANSWER
    parser = OutputParser(detect_format(template("openai-gpt-oss-120b")))
    text = ('<|channel|>analysis<|message|>Use to=functions.search? <|end|><|start|>assistant<|channel|>commentary'
            '<|message|>Checking the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather'
            ' <|constrain|>json<|message|>{"city": "Paris"}<|call|>')
    pieces = [p for t in token_texts("harmony", text) for p in parser.feed(t)] + parser.finish()
    assert "".join(p.text for p in pieces if p.kind == ANSWER) == "Checking the weather."
    assert [(c.name, c.arguments) for p in pieces if p.kind == TOOL_CALL for c in parse_calls(fmt, p.text)] == [PARIS]


@pytest.mark.parametrize("name", sorted({*MORE_FAMILIES, "tencent-Hy3", "openai-gpt-oss-120b", "moonshotai-Kimi-K2",
                                         "llama-cpp-deepseek-r1", "google-gemma-4-31B-it", "Qwen3-Coder", "GLM-4.6"}))
def test_the_required_call_shape_reads_back_as_the_call(name: str):
    fmt = detect_call_format(template(name))
    spec = ToolSpec("search", parameters={"type": "object", "properties": {"query": {"type": "object"}}})
    prefix, schema, suffix = required_call_shape(fmt, spec)
    text = prefix + json.dumps(filled(schema, "search", NESTED), ensure_ascii=False) + suffix
    assert [(c.name, c.arguments) for c in parse_calls(fmt, text)] == [NEST], text
    scanner = CallScanner(fmt)
    pieces = [p for t in text for p in scanner.feed(t)] + scanner.finish()
    if fmt.kind != "harmony":  # harmony's markers are read by the output parser
        assert [p.kind for p in pieces] == [TOOL_CALL] and [(c.name, c.arguments) for c in scanner.calls] == [NEST]
