"""A thinking model in the real runtime: SmolLM2's weights with QwQ's chat template, whose generation
prompt opens ``<think>`` when thinking is on (the R1 style). The budget and *Answer now* close the
block the way the format does; earlier reasoning stays out of the next prompt; the cache is reused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from desktop.core.engine.answer_loop import ThinkingRequest
from desktop.core.engine.output_parser import ANSWER, REASONING
from desktop.core.engine.runtime import LoadConfig, Runtime
from desktop.core.system.settings import GenerationSettings
from tests.helpers.templated_model import with_template

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def thinker(starter_model: Path, tmp_path_factory: pytest.TempPathFactory):
    model = with_template(starter_model, "Qwen-QwQ-32B", tmp_path_factory.mktemp("qwq") / "smol-qwq.gguf")
    rt = Runtime(model, LoadConfig(n_ctx=1024, n_threads=2))
    yield rt
    rt.close()


def greedy(max_tokens: int) -> GenerationSettings:
    return GenerationSettings(temperature=0.0, seed=3, max_tokens=max_tokens)


def test_the_format_is_read_from_the_template(thinker: Runtime):
    fmt = thinker.thinking
    assert (fmt.kind, fmt.open, fmt.close, fmt.opened_by_prompt, fmt.switch) == (
        "tags", "<think>", "</think>", True, "enable_thinking")


def test_the_budget_closes_the_thinking_and_an_answer_follows(thinker: Runtime):
    pieces = list(thinker.stream_chat(QUESTION, greedy(48), thinking=ThinkingRequest(think=True, budget=4)))
    stats = thinker.last_stats
    kinds = [p.kind for p in pieces]
    assert kinds[0] == REASONING and ANSWER in kinds
    assert kinds.index(ANSWER) > 0 and REASONING not in kinds[kinds.index(ANSWER):]  # thinking, then answer
    assert stats.reasoning_tokens == 4 and stats.thinking_closed_by == "budget"
    assert stats.answer_tokens > 0 and stats.thinking_s > 0
    assert not any("<think>" in p.text or "</think>" in p.text for p in pieces)
    closing = thinker._llm.tokenize(b"</think>\n\n", add_bos=False, special=True)
    evaluated = list(thinker._llm.input_ids[:thinker.cached_tokens])
    at = stats.prompt_tokens + 4
    assert evaluated[at:at + len(closing)] == closing  # the closing tokens went into the context


def test_answer_now_closes_the_thinking_at_once(thinker: Runtime):
    request = ThinkingRequest(think=True)
    seen = 0
    pieces = []
    for piece in thinker.stream_chat(QUESTION, greedy(40), thinking=request):
        pieces.append(piece)
        seen += piece.kind == REASONING
        if seen == 2:
            request.answer_now.set()
    stats = thinker.last_stats
    assert stats.thinking_closed_by == "answer_now" and stats.reasoning_tokens == 2
    assert pieces[-1].kind == ANSWER


def test_thinking_off_gives_no_reasoning(thinker: Runtime):
    pieces = list(thinker.stream_chat(QUESTION, greedy(16), thinking=ThinkingRequest(think=False)))
    assert pieces and all(p.kind == ANSWER for p in pieces)
    assert thinker.last_stats.reasoning_tokens == 0


def test_earlier_reasoning_stays_out_and_the_cache_is_reused(thinker: Runtime):
    request = ThinkingRequest(think=True, budget=3)
    first = list(thinker.stream_chat(QUESTION, greedy(24), thinking=request))
    first_prompt = thinker.last_stats.prompt_tokens
    reasoning = "".join(p.text for p in first if p.kind == REASONING).strip()
    answer = "".join(p.text for p in first if p.kind == ANSWER).strip()
    assert reasoning and answer
    history = [*QUESTION, {"role": "assistant", "content": answer, "reasoning_content": reasoning},
               {"role": "user", "content": "And of Italy?"}]
    shaped = thinker.prompt_messages(history, request)
    prompt, _tokens, _stop = thinker.render(shaped, {"enable_thinking": True})
    assert reasoning not in prompt and answer in prompt
    list(thinker.stream_chat(history, greedy(8), thinking=ThinkingRequest(think=True, budget=4)))
    stats = thinker.last_stats
    # Everything up to the first answer's opened <think> was already in llama.cpp's KV cache.
    assert stats.reused_tokens >= first_prompt - 4
    closing = thinker._llm.tokenize(b"</think>\n\n", add_bos=False, special=True)
    # llama.cpp evaluated the new part of the prompt, then the budget's closing tokens (and one
    # sampled token again), not the history the cache held.
    assert stats.prompt_eval_tokens <= stats.prompt_tokens - stats.reused_tokens + len(closing) + 1
    assert stats.prompt_eval_tokens < stats.prompt_tokens


def test_cancel_while_thinking_keeps_the_reasoning(thinker: Runtime):
    cancel = threading.Event()
    pieces = []
    for piece in thinker.stream_chat(QUESTION, greedy(60), cancel, ThinkingRequest(think=True)):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()
    assert thinker.last_stats.stop_reason == "cancelled"
    assert [p.kind for p in pieces] == [REASONING] * len(pieces) and len(pieces) <= 3
