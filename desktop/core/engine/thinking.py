"""How a model thinks: its reasoning format and how thinking is switched, read from its chat template.

Never from the file name: the template is the model's own statement of its output format. The
markers come from the template's source (the known pairs of today's families) or, for a template
that writes a past answer's ``reasoning_content`` between markers of its own, from rendering one;
whether the generation prompt already opens the block (DeepSeek R1 style), and whether and how
thinking can be switched off, come from rendering the template with each switch and comparing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from desktop.core.engine.chat_template import ChatTemplate, TemplateError
from desktop.core.engine.thinking_format import (
    EFFORTS,
    HARMONY,
    SWITCH_EFFORT,
    SWITCH_FLAG,
    SWITCH_NONE,
    SWITCH_VARIABLES,
    TAGS,
    ThinkingFormat,
    thinking_variables,
)

# Known marker pairs of today's families, most specific first.
KNOWN_MARKERS: tuple[tuple[str, str], ...] = (
    ("<seed:think>", "</seed:think>"),          # ByteDance Seed-OSS
    ("<|channel>thought", "<channel|>"),        # Gemma 4's thought channel
    ("[THINK]", "[/THINK]"),                    # Mistral (Magistral, Ministral reasoning)
    ("<|START_THINKING|>", "<|END_THINKING|>"),  # Cohere Command A / R7B
    ("<think>", "</think>"),                    # Qwen3, QwQ, DeepSeek R1, SmolLM3, GLM, MiniMax, Kimi...
)
HARMONY_MARKER = "<|channel|>"                  # gpt-oss: analysis / commentary / final channels
_SENTINEL_REASONING = "Cove-reasoning-sentinel"
_SENTINEL_ANSWER = "Cove-answer-sentinel"
_PROBE_USER = "Cove-user-sentinel"


def _render(template: ChatTemplate, messages: list[dict[str, Any]], generation: bool,
            variables: Mapping[str, Any]) -> str | None:
    try:
        return template.render(messages, add_generation_prompt=generation, seconds=2.0,
                               variables=variables).prompt
    except TemplateError:
        return None


def _generation_prompt(template: ChatTemplate, variables: Mapping[str, Any],
                       system: str = "") -> str | None:
    """What the template adds after the last user turn to start an answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": _PROBE_USER}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    full = _render(template, messages, True, variables)
    if full is None:
        return None
    at = full.rfind(_PROBE_USER)
    return full[at + len(_PROBE_USER):] if at >= 0 else full


def _markers_from_source(source: str) -> tuple[str, str] | None:
    for open_marker, close_marker in KNOWN_MARKERS:
        if open_marker in source and close_marker in source:
            return open_marker, close_marker
    return None


def _markers_from_history(template: ChatTemplate) -> tuple[str, str] | None:
    """The markers a template writes around a past answer's ``reasoning_content``."""
    messages = [{"role": "user", "content": _PROBE_USER},
                {"role": "assistant", "content": _SENTINEL_ANSWER, "reasoning_content": _SENTINEL_REASONING,
                 "reasoning": _SENTINEL_REASONING}]
    text = _render(template, messages, False, {})
    if not text or _SENTINEL_REASONING not in text or _SENTINEL_ANSWER not in text:
        return None
    start = text.index(_SENTINEL_REASONING)
    before = text[:start].rstrip().rsplit(None, 1)
    between = text[start + len(_SENTINEL_REASONING):text.index(_SENTINEL_ANSWER)].strip()
    if not before or not between or _PROBE_USER in before[-1]:
        return None
    return before[-1], between


def _switch(template: ChatTemplate, source: str) -> tuple[str, tuple[str, ...], bool]:
    """How thinking is switched (whichever variable or flag changes the prompt), its levels, and
    whether it is on when nothing is set."""
    user = [{"role": "user", "content": _PROBE_USER}]
    plain = _render(template, user, True, {})
    for name in SWITCH_VARIABLES:
        if re.search(rf"\b{name}\b", source) is None:
            continue
        on, off = (_render(template, user, True, {name: v}) for v in (True, False))
        if on is not None and off is not None and on != off:
            return name, (), plain != off
    if "reasoning_effort" in source:
        prompts = {e: _generation_prompt(template, {"reasoning_effort": e}) for e in EFFORTS}
        full = _render(template, [{"role": "user", "content": _PROBE_USER}], True, {"reasoning_effort": "low"})
        if len(set(prompts.values())) > 1 or (full and "low" in full and "reasoning_effort" in source):
            return SWITCH_EFFORT, EFFORTS, True
    if "/no_think" in source:
        on = _generation_prompt(template, {}, system="/think")
        off = _generation_prompt(template, {}, system="/no_think")
        if on is not None and off is not None and on != off:
            return SWITCH_FLAG, (), True
    return SWITCH_NONE, (), True


def detect_format(source: str, eos_token: str = "", bos_token: str = "") -> ThinkingFormat:
    """The thinking format of a chat template (``source``: the GGUF's ``tokenizer.chat_template``)."""
    if not source:
        return ThinkingFormat()
    try:
        template = ChatTemplate(source, eos_token, bos_token)
    except TemplateError:
        return ThinkingFormat(notes=("the chat template could not be compiled",))
    reads = "reasoning_content" in source or "message.reasoning" in source or "message.thinking" in source
    if HARMONY_MARKER in source and "analysis" in source:
        switch, efforts, default_on = _switch(template, source)
        return ThinkingFormat(HARMONY, HARMONY_MARKER, "<|end|>", False, switch, efforts, reads, default_on)
    markers = _markers_from_source(source) or (_markers_from_history(template) if reads else None)
    if markers is None:
        return ThinkingFormat(reads_reasoning=reads)
    open_marker, close_marker = markers
    switch, efforts, default_on = _switch(template, source)
    thinking_prompt = _generation_prompt(template, thinking_variables(
        ThinkingFormat(switch=switch, efforts=efforts), True, "medium")) or ""
    tail = thinking_prompt.rstrip()
    opened = bool(open_marker) and tail.endswith(open_marker) and not tail.endswith(close_marker)
    return ThinkingFormat(TAGS, open_marker, close_marker, opened, switch, efforts, reads, default_on)


def describe_thinking(source: str) -> str:
    """A few words on how a chat template makes its model think, for the Library pane."""
    return detect_format(source).summary()
