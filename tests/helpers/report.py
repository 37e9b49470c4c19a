"""Figures the reliability tests measure, printed together as one line when the run ends."""

from __future__ import annotations

FIGURES: dict[str, str] = {}


def report(name: str, value: object) -> None:
    """Record one figure (a count or a short phrase) under ``name``."""
    FIGURES[name] = str(value)


def summary_line() -> str:
    """The one-line summary, or an empty string when nothing was recorded."""
    if not FIGURES:
        return ""
    return "Reliability: " + "; ".join(f"{name}: {value}" for name, value in FIGURES.items())
