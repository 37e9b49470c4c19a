"""The streaming answer recorder: bounded flushes, 'streaming' until finished, final status."""

from __future__ import annotations

from pathlib import Path

from desktop.core.conversations.answer_recorder import FLUSH_INTERVAL_S, AnswerRecorder
from desktop.core.conversations.store import COMPLETE, STOPPED, STREAMING, Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(interval: float = 0.5):
    writes: list[tuple[str, str | None, dict | None]] = []
    clock = FakeClock()
    rec = AnswerRecorder(lambda text, _reasoning, status, stats: writes.append((text, status, stats)),
                         interval=interval, clock=clock)
    return rec, writes, clock


def test_text_concatenates_pieces() -> None:
    rec, _, _ = make()
    for piece in ("Hel", "lo", ", ", "wörld", "", "!"):
        rec.add(piece)
    assert rec.text == "Hello, wörld!"


def test_flushes_at_most_every_interval() -> None:
    times: list[float] = []
    clock = FakeClock()
    writes: list[tuple[str, str | None, dict | None]] = []

    def write(text: str, _reasoning: str, status: str | None, stats: dict | None) -> None:
        times.append(clock.now)
        writes.append((text, status, stats))

    rec = AnswerRecorder(write, interval=0.5, clock=clock)
    # 80 pieces, 0.125 s apart: 10 s in all -> one flush every 0.5 s, never more often.
    for i in range(80):
        clock.now += 0.125
        rec.add(f"{i} ")
    assert len(writes) == 20
    assert rec.flushes == len(writes)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.5 for gap in gaps)
    # Every write is the full text so far, marked as still streaming, stats unchanged.
    full = "".join(f"{i} " for i in range(80))
    for text, status, stats in writes:
        assert status == STREAMING and stats is None
        assert full.startswith(text)
    assert writes[-1][0] == full


def test_no_flush_before_interval() -> None:
    rec, writes, clock = make(interval=0.5)
    for _ in range(50):
        clock.now += 0.009
        rec.add("x")
    assert writes == []
    clock.now += 0.1
    rec.add("y")
    assert writes == [("x" * 50 + "y", STREAMING, None)]


def test_flush_without_new_text_writes_nothing() -> None:
    rec, writes, clock = make()
    rec.flush()
    assert writes == []
    rec.add("a")
    rec.flush()
    rec.flush()
    assert writes == [("a", STREAMING, None)]


def test_finish_writes_final_status_and_stats() -> None:
    rec, writes, clock = make()
    rec.add("The answer")
    clock.now += 1
    rec.add(" is 42.")
    assert writes[-1] == ("The answer is 42.", STREAMING, None)
    text = rec.finish(COMPLETE, {"completion_tokens": 5})
    assert text == "The answer is 42."
    assert writes[-1] == ("The answer is 42.", COMPLETE, {"completion_tokens": 5})


def test_finish_defaults_and_stopped() -> None:
    rec, writes, _ = make()
    rec.add("partial")
    assert rec.finish() == "partial"
    assert writes[-1] == ("partial", COMPLETE, {})
    rec2, writes2, _ = make()
    rec2.finish(STOPPED)
    assert writes2 == [("", STOPPED, {})]


def test_default_interval_is_short() -> None:
    assert 0 < FLUSH_INTERVAL_S <= 1.0


def test_with_real_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "cove.sqlite3")
    try:
        conv = store.create_conversation()
        q = store.add_message(conv.id, "user", "q")
        a = store.add_message(conv.id, "assistant", "", parent_id=q.id, status=STREAMING)
        clock = FakeClock()
        rec = AnswerRecorder(lambda text, reasoning, status, stats: store.update_message(
                                 a.id, text, status=status, stats=stats, reasoning=reasoning),
                             interval=0.5, clock=clock)
        rec.add("one ")
        clock.now += 0.6
        rec.add("two ")
        got = store.get_message(a.id)
        assert (got.content, got.status) == ("one two ", STREAMING)
        rec.add("three")
        assert store.get_message(a.id).content == "one two "  # not yet flushed
        rec.finish(COMPLETE, {"completion_tokens": 3})
        got = store.get_message(a.id)
        assert (got.content, got.status, got.stats) == ("one two three", COMPLETE, {"completion_tokens": 3})
    finally:
        store.close()


def test_reasoning_is_kept_apart_and_flushed_with_the_text() -> None:
    clock = FakeClock()
    writes: list[tuple[str, str, str | None]] = []
    rec = AnswerRecorder(lambda text, reasoning, status, _stats: writes.append((text, reasoning, status)),
                         interval=0.5, clock=clock)
    rec.add("Let me see. ", "reasoning")
    rec.add("Two and two.", "reasoning")
    clock.now += 0.6
    rec.add("Four.")
    assert writes == [("Four.", "Let me see. Two and two.", STREAMING)]
    assert rec.finish(STOPPED) == "Four."
    assert writes[-1] == ("Four.", "Let me see. Two and two.", STOPPED)
