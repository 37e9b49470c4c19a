"""Checking a model file, the quarantine probe, and the crash marker (real starter model)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from desktop.core.engine.loader import (
    ModelFileError,
    check_model_file,
    clear_crash_marker,
    load_runtime,
    read_crash_marker,
    write_crash_marker,
)
from desktop.core.engine.probe import probe_model
from desktop.core.engine.runtime import SIMULATE_REPACK_CRASH_ENV
from desktop.core.system.paths import AppPaths


@pytest.fixture(scope="module")
def truncated_model(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> Path:
    """The starter model's first megabyte: a plausible header and no tensor data."""
    path = tmp_path_factory.mktemp("truncated") / "SmolLM2-truncated.gguf"
    with starter_model.open("rb") as src:
        path.write_bytes(src.read(1_000_000))
    return path


# -- check_model_file -----------------------------------------------------------------------------
def test_check_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        check_model_file(tmp_path / "nowhere.gguf")


def test_check_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a folder"):
        check_model_file(tmp_path)


def test_check_empty_argument() -> None:
    with pytest.raises(ModelFileError, match="No model file"):
        check_model_file("  ")


def test_check_text_file(tmp_path: Path) -> None:
    text = tmp_path / "readme.gguf"
    text.write_text("This is a text file, not a model.\n" * 10)
    with pytest.raises(ModelFileError, match="not a GGUF"):
        check_model_file(text)


def test_check_truncated_file(truncated_model: Path) -> None:
    with pytest.raises(ModelFileError, match="truncated") as err:
        check_model_file(truncated_model)
    assert truncated_model.name in str(err.value)


def test_check_starter_model(starter_model: Path) -> None:
    info = check_model_file(starter_model)
    assert Path(info.path) == starter_model


# -- probe ----------------------------------------------------------------------------------------
def test_probe_verdict_is_ok_and_cached(starter_model: Path, probed_cache: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The session fixture ran the real probe once; its record shows what the children did.
    stored = list(json.loads(probed_cache.read_text()).values())
    assert len(stored) == 1
    assert stored[0]["ok"] is True
    assert stored[0]["attempts"] and stored[0]["attempts"][-1].endswith(": ok")

    children: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: children.append(args))
    result = probe_model(starter_model, cache_file=probed_cache)
    assert children == []  # a cached verdict starts no child process
    assert result.ok
    assert result.attempts == ["cached"]
    assert isinstance(result.config.get("use_extra_bufts"), bool)
    assert result.config == stored[0]["config"]


def test_probe_falls_back_when_repacking_crashes(starter_model: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_REPACK_CRASH_ENV, "1")
    cache = tmp_path / "probes.json"
    result = probe_model(starter_model, cache_file=cache, timeout=120)
    assert result.ok, result.attempts
    assert result.config == {"use_extra_bufts": False}
    assert len(result.attempts) == 2
    assert result.attempts[0].startswith("weight repacking on: crashed (SIGABRT)")
    assert result.attempts[1] == "weight repacking off: ok"
    # The verdict is remembered: the crashing configuration is never tried again.
    again = probe_model(starter_model, cache_file=cache)
    assert again.attempts == ["cached"] and again.config == {"use_extra_bufts": False}


def test_probe_of_truncated_model_stops_at_validation(truncated_model: Path, tmp_path: Path) -> None:
    result = probe_model(truncated_model, cache_file=tmp_path / "probes.json", timeout=120)
    assert not result.ok
    assert "truncated" in result.message
    assert truncated_model.name in result.message
    assert len(result.attempts) == 1  # a bad file is not retried with another configuration
    assert "truncated" in result.attempts[0]


# -- crash marker and loading ---------------------------------------------------------------------
def test_crash_marker_round_trip(tmp_path: Path) -> None:
    from desktop.core.system.paths import app_paths

    p = app_paths(tmp_path).ensure()
    assert read_crash_marker(p) is None
    model = tmp_path / "m.gguf"
    write_crash_marker(p, model, {"use_extra_bufts": True, "n_ctx": 512})
    record = read_crash_marker(p)
    assert record is not None
    assert record.path == str(model)
    assert record.config == {"use_extra_bufts": True, "n_ctx": 512}
    assert abs(record.at - time.time()) < 60
    clear_crash_marker(p)
    assert read_crash_marker(p) is None
    clear_crash_marker(p)  # clearing twice is fine


def test_damaged_crash_marker_reads_as_none(tmp_path: Path) -> None:
    from desktop.core.system.paths import app_paths

    p = app_paths(tmp_path).ensure()
    for junk in ("{", "[]", '{"path": 3}', "null"):
        p.crash_marker.write_text(junk)
        assert read_crash_marker(p) is None


def test_load_runtime_clears_the_marker(paths: AppPaths, starter_model: Path) -> None:
    write_crash_marker(paths, starter_model, {"stale": True})  # left by an earlier crash
    runtime = load_runtime(starter_model, paths, n_ctx=512, n_threads=2)
    try:
        assert read_crash_marker(paths) is None
        assert not paths.crash_marker.exists()
        assert runtime.n_ctx == 512
        assert runtime.config.n_threads == 2
    finally:
        runtime.close()


def test_load_runtime_refuses_a_bad_file(paths: AppPaths, truncated_model: Path) -> None:
    with pytest.raises(ModelFileError, match="truncated"):
        load_runtime(truncated_model, paths)
    assert read_crash_marker(paths) is None


def test_verdict_records_size_and_sha256(tmp_path, starter_model):
    import hashlib
    import json

    from desktop.core.engine.probe import probe_model

    cache = tmp_path / "probes.json"
    assert probe_model(starter_model, cache_file=cache).ok
    [record] = json.loads(cache.read_text()).values()
    assert record["size"] == starter_model.stat().st_size
    assert record["sha256"] == hashlib.sha256(starter_model.read_bytes()).hexdigest()
