"""Speed checks that hold on any machine, idle or loaded: work is timed in units of a fixed
reference workload timed right beside it (a ratio), never in seconds.

A machine twice as slow, or shared with a build, takes longer for both, so the ratio stays put;
a change that makes the work itself slower moves it. The targets stay readable in milliseconds:
``budget(0.25)`` is what 250 ms is worth in units on the machine the targets were set on
(REFERENCE_S_THERE: the 2-core AMD EPYC build machine, idle).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

REFERENCE_LOOPS = 250_000
REFERENCE_S_THERE = 0.007  # one reference workload on the machine the targets were set on, idle


def _reference_work() -> int:
    total = 0
    for i in range(REFERENCE_LOOPS):
        total += i % 7
    return total


def reference_s(runs: int = 1) -> float:
    """Seconds the reference workload takes now, on this machine, under its present load (the
    median of ``runs``)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        _reference_work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def budget(target_s: float) -> float:
    """``target_s`` seconds on the reference machine, in reference units."""
    return target_s / REFERENCE_S_THERE


def within(seconds: float, target_s: float, reference: float | None = None) -> bool:
    """Whether ``seconds`` measured here is within what ``target_s`` is on the reference machine,
    scaled by the reference workload timed now (or ``reference``, timed beside the work)."""
    return Pace(seconds, reference or reference_s(runs=5)).units <= budget(target_s)



@dataclass(frozen=True)
class Pace:
    """Median seconds of the work and of the reference workload timed beside it."""

    work_s: float
    reference_s: float

    @property
    def units(self) -> float:
        """The work in reference units (compare with :func:`budget`)."""
        return self.work_s / self.reference_s

    def __str__(self) -> str:
        return (f"{self.work_s * 1000:.1f} ms = {self.units:.1f} units "
                f"(one unit {self.reference_s * 1000:.1f} ms here, {REFERENCE_S_THERE * 1000:.0f} ms there)")


def pace_of(samples_s: list[float], references_s: list[float]) -> Pace:
    """The medians of timings a test took itself (each sample with a reference_s() beside it)."""
    return Pace(statistics.median(samples_s), statistics.median(references_s))


def measure(work: Callable[[], object], runs: int = 5) -> Pace:
    """Time ``work()`` ``runs`` times, each run followed by the reference workload."""
    samples, references = [], []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
        references.append(reference_s())
    return pace_of(samples, references)


def within_deadline(seconds: float, deadline_s: float, overhead_s: float, reference: float | None = None) -> bool:
    """For work stopped by a wall-clock deadline: the deadline lasts as long on any machine, so
    only what comes after it (unwinding, falling back, bookkeeping) is scaled like :func:`within`."""
    return within(max(0.0, seconds - deadline_s), overhead_s, reference)
