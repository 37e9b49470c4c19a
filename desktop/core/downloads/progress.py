"""Progress of a download: bytes done, a smoothed speed, time left, reported at most ~10 times a second."""

from __future__ import annotations

import time
from collections.abc import Callable

# on_progress(done_bytes, total_bytes, bytes_per_s, eta_s); eta_s is None while no speed is known.
ProgressCallback = Callable[[int, int, float, "float | None"], None]

REPORT_EVERY_S = 0.1    # ~10 reports a second at most
SMOOTHING_S = 2.0       # time constant of the speed's moving average

__all__ = ["ProgressCallback", "ProgressMeter"]


class ProgressMeter:
    """Turns byte counts into throttled ``on_progress`` calls with a smoothed speed and an ETA."""

    def __init__(self, total: int, on_progress: ProgressCallback | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self.speed = 0.0
        self._report = on_progress
        self._clock = clock
        self._last_t = 0.0
        self._last_done = 0
        self._last_report = float("-inf")

    def start(self, done: int) -> None:
        """Begin (or begin again) counting from ``done`` bytes already there; reports at once."""
        self.done = self._last_done = done
        self._last_t = self._clock()
        self._emit(self._last_t)

    def update(self, done: int) -> None:
        """Record ``done`` bytes; reports when the last report is at least 0.1 s old."""
        self.done = done
        now = self._clock()
        if now - self._last_report >= REPORT_EVERY_S:
            self._measure(now)
            self._emit(now)

    def finish(self) -> None:
        """Report the final count now, whatever the throttle says."""
        now = self._clock()
        self._measure(now)
        self._emit(now)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current speed; None while unknown."""
        if self.done >= self.total:
            return 0.0
        return (self.total - self.done) / self.speed if self.speed > 0 else None

    def _measure(self, now: float) -> None:
        elapsed = now - self._last_t
        if elapsed <= 0:
            return
        instant = (self.done - self._last_done) / elapsed
        weight = min(1.0, elapsed / SMOOTHING_S)
        self.speed = instant if self.speed == 0 else self.speed + (instant - self.speed) * weight
        self._last_t, self._last_done = now, self.done

    def _emit(self, now: float) -> None:
        self._last_report = now
        if self._report is not None:
            self._report(self.done, self.total, self.speed, self.eta)
