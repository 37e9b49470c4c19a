"""Installer tests: the figures the Linux build measured, printed again when the run ends."""

from __future__ import annotations

from tests.installers.figures import FIGURES


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line with the bundle's size and its launch-to-window time (when the build ran)."""
    if FIGURES:
        terminalreporter.write_sep("=", "installer figures")
        terminalreporter.write_line("; ".join(f"{name}: {value}" for name, value in FIGURES.items()))
