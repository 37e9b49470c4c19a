"""Sizes and durations as a person reads them: the one formatter for each, used by the window and the CLI.

Sizes are in decimal SI units (1 kB = 1000 bytes, 1 GB = 10**9 bytes), as the Hugging Face Hub and
file managers show them, to three significant figures: ``812 bytes``, ``1.23 kB``, ``98.4 MB``,
``135 MB``, ``4.92 GB``. Durations are whole seconds: ``12 s``, ``3 min 05 s``, ``1 h 02 min``.
"""

from __future__ import annotations

__all__ = ["format_size", "format_duration"]

_UNITS = ("kB", "MB", "GB", "TB", "PB", "EB")


def format_size(n_bytes: float) -> str:
    """``n_bytes`` (a count of bytes, or bytes per second) in decimal units to three significant
    figures: 999 -> '999 bytes', 98_362_432 -> '98.4 MB', 4_920_000_000 -> '4.92 GB'."""
    if n_bytes < 0:
        return "-" + format_size(-n_bytes)
    whole = round(n_bytes)
    if whole < 1000:
        return f"{whole} byte{'' if whole == 1 else 's'}"
    value = float(n_bytes)
    for unit in _UNITS:
        value /= 1000
        if value < 999.5 or unit == _UNITS[-1]:
            break
    if value < 9.995:
        return f"{value:.2f} {unit}"
    return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"


def format_duration(seconds: float | None) -> str:
    """A time left or taken: '1 h 02 min', '3 min 05 s', '12 s'; '' when unknown (None)."""
    if seconds is None:
        return ""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"
