"""Figures the installer tests measured (bundle size, launch time), printed when the run ends."""

from __future__ import annotations

FIGURES: dict[str, str] = {}
