"""Every chat template of llama.cpp's models/templates/ is classified: how the model thinks, whether
the generation prompt opens the block, and how thinking is switched (tests/fixtures/templates)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.sandbox
import pytest

from desktop.core.engine.chat_template import ChatTemplate
from desktop.core.engine.thinking import detect_format
from desktop.core.engine.thinking_format import (
    HARMONY,
    NONE,
    SWITCH_EFFORT,
    SWITCH_FLAG,
    TAGS,
    ThinkingFormat,
    apply_flag,
    thinking_variables,
    with_override,
)

TEMPLATES = Path(__file__).resolve().parents[3] / "fixtures" / "templates"
NO_THINKING = (NONE, "", "", False, "", True)

# name: (kind, open marker, close marker, opened by the generation prompt, switch, on by default)
EXPECTED: dict[str, tuple[str, str, str, bool, str, bool]] = {
    "Apertus-8B-Instruct": NO_THINKING,
    "Apriel-1.6-15b-Thinker-fixed": ('tags', '<|begin_assistant|>', '[BEGIN FINAL RESPONSE]', False, '', True),
    "Bielik-11B-v3.0-Instruct": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "ByteDance-Seed-OSS": ('tags', '<seed:think>', '</seed:think>', False, '', True),
    "Cohere2MoE": ('tags', '<|START_THINKING|>', '<|END_THINKING|>', True, 'reasoning_effort', True),
    "CohereForAI-c4ai-command-r-plus-tool_use": NO_THINKING,
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": ('tags', '<|START_THINKING|>', '<|END_THINKING|>', False, 'enable_thinking', False),
    "GLM-4.6": ('tags', '<think>', '</think>', False, 'enable_thinking', True),
    "GLM-4.7-Flash": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "GigaChat3-10B-A1.8B": NO_THINKING,
    "GigaChat3.1-10B-A1.8B": NO_THINKING,
    "HuggingFaceTB-SmolLM3-3B": ('tags', '<think>', '</think>', False, 'enable_thinking', True),
    "Kimi-K2-Instruct": NO_THINKING,
    "Kimi-K2-Thinking": ('tags', '<think>', '</think>', False, '', True),
    "Kimi-K3": ('tags', 'role="assistant"<|sep|><|open|>think<|sep|>', '<|close|>think<|sep|><|open|>response<|sep|>', True, 'thinking', True),
    "LFM2-8B-A1B": NO_THINKING,
    "LFM2.5-8B-A1B": ('tags', '<think>', '</think>', False, '', True),
    "LFM2.5-Instruct": NO_THINKING,
    "MiMo-VL": NO_THINKING,
    "MiniMax-M1": NO_THINKING,
    "MiniMax-M2": ('tags', '<think>', '</think>', True, '', True),
    "MiniMax-M3": ('tags', '<mm:think>', '</mm:think>', False, '', True),
    "Mistral-Small-3.2-24B-Instruct-2506": NO_THINKING,
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "NVIDIA-Nemotron-Nano-v2": ('tags', '<think>', '</think>', True, 'no_think', True),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": NO_THINKING,
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": NO_THINKING,
    "Qwen-QwQ-32B": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "Qwen-Qwen2.5-7B-Instruct": NO_THINKING,
    "Qwen-Qwen3-0.6B": ('tags', '<think>', '</think>', False, 'enable_thinking', True),
    "Qwen3-Coder": NO_THINKING,
    "Qwen3.5-4B": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "Reka-Edge": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "Spark2.5": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "StepFun3.5-Flash": ('tags', '<think>', '</think>', True, '', True),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": ('tags', '<think>', '</think>', True, '', True),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "deepseek-ai-DeepSeek-V3.1": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "deepseek-ai-DeepSeek-V3.2": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "deepseek-ai-DeepSeek-V4-Flash-0731": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "deepseek-ai-DeepSeek-V4": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "fireworks-ai-llama-3-firefunction-v2": NO_THINKING,
    "google-gemma-2-2b-it": NO_THINKING,
    "google-gemma-4-31B-it-interleaved": ('tags', '<|channel>thought', '<channel|>', False, 'enable_thinking', False),
    "google-gemma-4-31B-it": ('tags', '<|channel>thought', '<channel|>', False, 'enable_thinking', False),
    "ibm-granite-granite-3.3-2B-Instruct": ('tags', '<think>', '</think>', False, 'thinking', False),
    "ibm-granite-granite-4.0": NO_THINKING,
    "ibm-granite-granite-4.1": NO_THINKING,
    "inclusionai-ling-3.0-flash": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "llama-cpp-deepseek-r1": ('tags', '<think>', '</think>', True, '', True),
    "llama-cpp-rwkv-world": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "meetkai-functionary-medium-v3.1": NO_THINKING,
    "meetkai-functionary-medium-v3.2": NO_THINKING,
    "meta-llama-Llama-3.1-8B-Instruct": NO_THINKING,
    "meta-llama-Llama-3.2-3B-Instruct": NO_THINKING,
    "meta-llama-Llama-3.3-70B-Instruct": NO_THINKING,
    "microsoft-Phi-3.5-mini-instruct": NO_THINKING,
    "mistralai-Ministral-3-14B-Reasoning-2512": ('tags', '[THINK]', '[/THINK]', False, '', True),
    "mistralai-Mistral-Nemo-Instruct-2407": NO_THINKING,
    "moonshotai-Kimi-K2": NO_THINKING,
    "muse-glimmer": ('tags', 'to=self<|message|>', '<|eom|><|start|>assistant to=user<|message|>', False, '', True),
    "openai-gpt-oss-120b": ('harmony', '<|channel|>', '<|end|>', False, 'reasoning_effort', True),
    "openbmb-MiniCPM5-1B": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "poolside-Laguna-S-2.1": ('tags', '<think>', '</think>', True, 'enable_thinking', True),
    "poolside-Laguna-XS-2.1": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "poolside-Laguna-XS.2": ('tags', '<think>', '</think>', True, 'enable_thinking', False),
    "tencent-Hy3": NO_THINKING,
    "unsloth-Apriel-1.5": NO_THINKING,
    "unsloth-mistral-Devstral-Small-2507": NO_THINKING,
    "upstage-Solar-Open-100B": NO_THINKING,
}


def classify(name: str) -> ThinkingFormat:
    return detect_format((TEMPLATES / f"{name}.jinja").read_text(), "<|eos|>", "<|bos|>")


def test_every_template_is_in_the_table():
    assert sorted(p.stem for p in TEMPLATES.glob("*.jinja")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 70


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_is_classified(name: str):
    fmt = classify(name)
    assert (fmt.kind, fmt.open, fmt.close, fmt.opened_by_prompt, fmt.switch, fmt.default_on) == EXPECTED[name]


def test_the_table_counts():
    formats = {name: classify(name) for name in EXPECTED}
    thinking = [f for f in formats.values() if f.thinks]
    assert len(thinking) == 40
    assert sum(f.can_switch_off for f in thinking) == 27
    assert sum(f.opened_by_prompt for f in thinking) == 25
    assert [n for n, f in formats.items() if f.kind == HARMONY] == ["openai-gpt-oss-120b"]
    assert formats["Qwen-Qwen3-0.6B"].summary() == "thinks · can switch off"
    assert formats["deepseek-ai-DeepSeek-R1-Distill-Llama-8B"].summary() == "thinks · always"
    assert formats["openai-gpt-oss-120b"].summary() == "thinks · effort low/medium/high"
    assert formats["meta-llama-Llama-3.1-8B-Instruct"].summary() == "answers directly"


class GenerationTag(jinja2.ext.Extension):
    """transformers' ``{% generation %}`` block, rendered as its body (as transformers does)."""

    tags = {"generation"}

    def parse(self, parser):
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def plain_jinja(source: str, messages: list[dict], variables: dict) -> str:
    """The template rendered by plain Jinja (as transformers does), with the same variables."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols", GenerationTag])

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    return env.from_string(source).render(messages=messages, eos_token="<|eos|>", bos_token="<|bos|>",
                                          add_generation_prompt=True, raise_exception=raise_exception,
                                          strftime_now=lambda fmt: datetime.now().strftime(fmt), **variables)


CONVERSATION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e[4]))
@pytest.mark.parametrize("think", [True, False])
def test_thinking_switch_renders_as_plain_jinja_does(name: str, think: bool):
    source = (TEMPLATES / f"{name}.jinja").read_text()
    fmt = classify(name)
    variables = thinking_variables(fmt, think, "low")
    messages = apply_flag(fmt, [dict(m) for m in CONVERSATION], think)
    expected = plain_jinja(source, messages, variables)
    ours = ChatTemplate(source, "<|eos|>", "<|bos|>").render(messages, variables=variables, seconds=5.0).prompt
    assert ours == expected
    if fmt.can_switch_off:
        other = ChatTemplate(source, "<|eos|>", "<|bos|>").render(
            apply_flag(fmt, [dict(m) for m in CONVERSATION], not think),
            variables=thinking_variables(fmt, not think), seconds=5.0).prompt
        assert other != ours, "switching thinking changes nothing in the prompt"


def test_switch_variables_per_kind():
    qwen, oss, nemotron = classify("Qwen-Qwen3-0.6B"), classify("openai-gpt-oss-120b"), classify("NVIDIA-Nemotron-Nano-v2")
    assert thinking_variables(qwen, False) == {"enable_thinking": False}
    assert oss.switch == SWITCH_EFFORT and thinking_variables(oss, True, "high") == {"reasoning_effort": "high"}
    assert thinking_variables(oss, True, "extreme") == {"reasoning_effort": "medium"}
    assert nemotron.switch == SWITCH_FLAG
    flagged = apply_flag(nemotron, [{"role": "user", "content": "Hi"}], False)
    assert flagged[0] == {"role": "system", "content": "/no_think"}
    granite = classify("ibm-granite-granite-3.3-2B-Instruct")
    assert granite.switch == "thinking" and not granite.default_on
    assert granite.summary() == "thinks when switched on"


def test_an_override_sets_markers_for_a_template_cove_cannot_read():
    fmt = with_override(classify("Qwen-Qwen2.5-7B-Instruct"), "<reflect>", "</reflect>")
    assert (fmt.kind, fmt.open, fmt.close, fmt.source) == (TAGS, "<reflect>", "</reflect>", "override")
    assert with_override(ThinkingFormat(), "", "") == ThinkingFormat()
