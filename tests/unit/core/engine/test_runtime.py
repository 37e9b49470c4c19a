"""The in-process runtime with the real starter model: streaming, stats, cancel, KV reuse, context."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from desktop.core.engine.output_parser import ANSWER, Piece, answer_text
from desktop.core.engine.runtime import GenerationError, LoadConfig, Runtime
from desktop.core.system.settings import GenerationSettings

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]
CANCEL_SHARE_OF_A_TENTH = 0.5  # a cancel during prompt evaluation: at most half of what a tenth of it takes


@pytest.fixture(scope="module")
def runtime(starter_model: Path):
    rt = Runtime(starter_model, LoadConfig(n_ctx=1024, n_threads=2))
    yield rt
    rt.close()


def greedy(max_tokens: int = 24, seed: int = 1) -> GenerationSettings:
    return GenerationSettings(temperature=0.0, seed=seed, max_tokens=max_tokens)


def test_stream_yields_pieces_and_fills_stats(runtime: Runtime) -> None:
    pieces = list(runtime.stream_chat(QUESTION, greedy(24)))
    stats = runtime.last_stats
    assert len(pieces) >= 3
    assert all(isinstance(p, Piece) and p.kind == ANSWER and p.text for p in pieces)  # SmolLM2 does not think
    assert answer_text(pieces).strip()
    assert 0 < stats.completion_tokens <= 24
    assert stats.decode_tokens_per_s > 0
    assert stats.time_to_first_token_s > 0
    assert stats.total_s >= stats.time_to_first_token_s
    assert stats.prompt_tokens > 5
    assert stats.context_size == runtime.n_ctx == 1024
    assert stats.prompt_tokens < stats.context_used <= stats.prompt_tokens + stats.completion_tokens
    assert stats.stop_reason in ("stop", "length")
    assert stats.dropped_messages == 0


def test_same_seed_and_zero_temperature_repeat(runtime: Runtime) -> None:
    settings = greedy(12, seed=7)
    first = answer_text(runtime.stream_chat(QUESTION, settings))
    second = answer_text(runtime.stream_chat(QUESTION, settings))
    assert first and first == second


def test_max_tokens_is_honoured(runtime: Runtime) -> None:
    for limit in (1, 5):
        list(runtime.stream_chat(STORY, greedy(limit)))
        stats = runtime.last_stats
        assert 1 <= stats.completion_tokens <= limit, (limit, stats)
        assert stats.stop_reason == "length"


def test_cancel_after_first_piece_stops_quickly(runtime: Runtime) -> None:
    cancel = threading.Event()
    first_piece = threading.Event()
    set_at: list[float] = []

    def canceller() -> None:
        first_piece.wait(30)
        set_at.append(time.perf_counter())
        cancel.set()

    helper = threading.Thread(target=canceller)
    helper.start()
    pieces, after_cancel = [], 0
    for piece in runtime.stream_chat(STORY, greedy(400), cancel):
        pieces.append(piece)
        after_cancel += cancel.is_set()
        first_piece.set()
    ended = time.perf_counter()
    helper.join()
    stats = runtime.last_stats
    latency = ended - set_at[0]
    print(f"\nstopped {latency * 1000:.1f} ms after cancel, {len(pieces)} pieces, {after_cancel} after it")
    assert after_cancel <= 1  # within one token, however long a token takes on this machine
    assert stats.stop_reason == "cancelled"
    assert 1 <= len(pieces) < 50
    assert stats.completion_tokens < 50


def long_prompt(fruit: str, sentences: int = 80) -> list[dict[str, str]]:
    """A prompt of about 11 tokens a sentence that shares nothing with another fruit's but the template's start."""
    text = " ".join(f"{fruit.title()} number {i} talks about {fruit} and oranges." for i in range(sentences))
    return [{"role": "user", "content": text + " Summarise this."}]


def test_cancel_during_prompt_evaluation(runtime: Runtime) -> None:
    settings = greedy(16)
    expected = answer_text(runtime.stream_chat(QUESTION, settings))
    # A tenth of such a prompt, evaluated to the end on this machine under its present load: the
    # cancel latency is a ratio to it, not a number of milliseconds.
    started = time.perf_counter()
    list(runtime.stream_chat(long_prompt("pears", sentences=8), greedy(1)))
    tenth_s = time.perf_counter() - started

    messages = long_prompt("apples")
    cancel = threading.Event()
    set_at: list[float] = []

    def fire() -> None:
        set_at.append(time.perf_counter())
        cancel.set()

    timer = threading.Timer(0.02, fire)
    started = time.perf_counter()
    timer.start()
    pieces = list(runtime.stream_chat(messages, settings, cancel))
    ended = time.perf_counter()
    timer.join()
    stats = runtime.last_stats
    latency = ended - set_at[0]
    print(f"\nprompt of {stats.prompt_tokens} tokens: stopped {latency * 1000:.1f} ms after cancel "
          f"({(ended - started) * 1000:.0f} ms in all; a tenth of the prompt takes {tenth_s * 1000:.0f} ms)")
    assert 850 <= stats.prompt_tokens < 1024
    assert stats.stop_reason == "cancelled"
    assert latency < CANCEL_SHARE_OF_A_TENTH * tenth_s
    assert pieces == []
    assert stats.completion_tokens == 0

    # The runtime is still sound: the same question gets the same answer, with honest figures.
    again = answer_text(runtime.stream_chat(QUESTION, settings))
    after = runtime.last_stats
    assert again == expected
    assert after.stop_reason in ("stop", "length")
    assert abs(after.prompt_eval_tokens - (after.prompt_tokens - after.reused_tokens)) <= 1


def test_second_turn_reuses_kv_cache(runtime: Runtime) -> None:
    turn1 = [{"role": "user", "content": "Name three colours of the rainbow."}]
    answer = answer_text(runtime.stream_chat(turn1, greedy(24)))
    first = runtime.last_stats
    turn2 = turn1 + [{"role": "assistant", "content": answer},
                     {"role": "user", "content": "And which one is your favourite?"}]
    list(runtime.stream_chat(turn2, greedy(8)))
    second = runtime.last_stats
    assert second.prompt_tokens > first.prompt_tokens
    assert second.reused_tokens >= first.prompt_tokens
    assert abs(second.prompt_eval_tokens - (second.prompt_tokens - second.reused_tokens)) <= 1
    assert second.prompt_eval_tokens < second.prompt_tokens // 2


def _long_history(turns: int = 40) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a patient teacher."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Question {i}: " + "tell me more about rivers and lakes " * 6})
        messages.append({"role": "assistant", "content": f"Answer {i}: " + "rivers flow into lakes and seas " * 6})
    messages.append({"role": "user", "content": "Finally, what is a delta?"})
    return messages


def test_fit_messages_drops_oldest_turns(runtime: Runtime) -> None:
    history = _long_history()
    _, all_tokens, _ = runtime.render(history)
    assert len(all_tokens) > 3 * runtime.n_ctx

    kept, dropped = runtime.fit_messages(history, reserve=256)
    assert dropped > 0
    assert len(kept) == len(history) - dropped
    assert kept[0] == history[0]  # the system message stays
    assert kept[1:] == history[len(history) - len(kept) + 1:]  # the most recent turns stay
    assert kept[-1]["content"] == "Finally, what is a delta?"
    _, tokens, _ = runtime.render(kept)
    assert len(tokens) <= runtime.n_ctx - 256


def test_stream_chat_reports_dropped_messages(runtime: Runtime) -> None:
    # A large max_tokens reserves half the context, so the prompt kept is at most ~512 tokens;
    # the answer is cancelled at its first piece to keep the test short.
    cancel = threading.Event()
    pieces = []
    for piece in runtime.stream_chat(_long_history(), greedy(600), cancel):
        pieces.append(piece)
        cancel.set()
    stats = runtime.last_stats
    assert pieces
    assert stats.dropped_messages > 0
    assert stats.prompt_tokens <= runtime.n_ctx // 2


def test_message_too_long_on_its_own(runtime: Runtime) -> None:
    huge = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "word " * 2000}]
    with pytest.raises(GenerationError, match="too long for the context window") as err:
        list(runtime.stream_chat(huge, greedy(8)))
    assert "1024" in str(err.value)
    # The runtime still answers afterwards.
    assert answer_text(runtime.stream_chat(QUESTION, greedy(4)))
