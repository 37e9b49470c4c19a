"""Benchmark suite plumbing: runs only when asked for, prints and saves one summary table.

Run: ``.venv/bin/python -m pytest tests/bench -s -m bench``. A plain ``pytest`` of the whole
tree deselects these (they take minutes and their figures need a quiet machine).
"""

from __future__ import annotations

from pathlib import Path

import benchlib
import pytest

from tests.gui.conftest import cove, start_cove  # noqa: F401 - the app fixtures of tests/gui, found by name

BENCH_DIR = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    if "bench" in (config.getoption("markexpr", "") or ""):
        return True
    for arg in config.args:
        target = Path(str(arg).split("::", 1)[0]).resolve()
        if target == BENCH_DIR or BENCH_DIR in target.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asked_for(config):
        return
    # Deselected, not skipped: the figures need a quiet machine and minutes; `cove`'s test command
    # stays a pass/fail run.
    benches = [item for item in items if BENCH_DIR in Path(str(item.fspath)).resolve().parents]
    if benches:
        items[:] = [item for item in items if item not in benches]
        config.hook.pytest_deselected(items=benches)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not benchlib.RESULTS:
        return
    table = benchlib.format_table(benchlib.RESULTS)
    benchlib.ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    benchlib.ARTIFACT.write_text(table, encoding="utf-8")
    terminalreporter.write_sep("=", "Cove benchmark summary")
    for line in table.splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {benchlib.ARTIFACT})")


@pytest.fixture(scope="session")
def qapp_cls() -> type:
    """pytest-qt's QApplication, with per-event timing for the stall benchmark."""
    return benchlib.timed_application_class()
