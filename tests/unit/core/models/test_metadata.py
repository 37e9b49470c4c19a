"""Model metadata for the library: read from real GGUF headers, cached by path, size and time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from desktop.core.library.model_library import ModelLibrary
from desktop.core.models.metadata import MetadataCache, ModelMetadata, format_parameters, read_metadata
from desktop.core.system.paths import app_paths
from tests.helpers.gguf_builder import STR, U32, arch, build_gguf


def test_real_starter_metadata(starter_model: Path) -> None:
    meta = read_metadata(starter_model)
    assert meta.architecture == "llama"
    assert meta.quantization == "Q4_1"
    assert meta.context_length == 8192
    assert meta.chat_template is True
    assert 130e6 < meta.parameters < 140e6
    assert meta.size == starter_model.stat().st_size
    assert "135M" in meta.title and meta.problem == ""


def test_synthetic_model_without_template(tmp_path: Path) -> None:
    path = build_gguf(tmp_path / "tiny.gguf", [arch("qwen2"), ("qwen2.context_length", U32, 32768),
                                               ("general.name", STR, "Tiny")],
                      [("w", (64, 64), 8), ("b", (64,), 0)])
    meta = read_metadata(path)
    assert (meta.architecture, meta.context_length, meta.chat_template, meta.title) == ("qwen2", 32768, False, "Tiny")
    assert meta.parameters == 64 * 64 + 64 and meta.quantization == "Q8_0"


def test_malformed_file_reports_its_problem(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    meta = read_metadata(bad)
    assert meta.problem and "notes.gguf" in meta.problem
    assert meta.size == bad.stat().st_size and meta.architecture == ""
    gone = read_metadata(tmp_path / "gone.gguf")
    assert "gone.gguf" in gone.problem


def test_split_model_parameters_add_up(tmp_path: Path) -> None:
    one = build_gguf(tmp_path / "m-00001-of-00002.gguf", [arch(), ("llama.context_length", U32, 4096)],
                     [("a", (32, 32), 0)])
    two = build_gguf(tmp_path / "m-00002-of-00002.gguf", [arch()], [("b", (32, 64), 0)])
    meta = read_metadata(one, [one, two])
    assert meta.parameters == 32 * 32 + 32 * 64
    assert meta.size == one.stat().st_size + two.stat().st_size


def test_cache_reads_each_header_once_and_notices_changes(tmp_path: Path, starter_model: Path) -> None:
    model = tmp_path / "m.gguf"
    shutil.copyfile(starter_model, model)
    store = tmp_path / "meta.json"
    cache = MetadataCache(store)
    first = cache.get(model)
    assert cache.get(model) == first and cache.reads == 1
    cache.save()
    assert json.loads(store.read_text())["version"] == 1

    again = MetadataCache(store)  # as after a restart
    assert again.get(model) == first and again.reads == 0

    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed
    assert again.get(model) == first and again.reads == 1


def test_cache_drops_records_of_files_that_are_gone(tmp_path: Path) -> None:
    a = build_gguf(tmp_path / "a.gguf")
    b = build_gguf(tmp_path / "b.gguf")
    store = tmp_path / "meta.json"
    cache = MetadataCache(store)
    cache.get(a), cache.get(b)
    cache.save()
    b.unlink()
    cache.get(a)
    cache.save()
    assert len(json.loads(store.read_text())["models"]) == 1


def test_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    model = build_gguf(tmp_path / "a.gguf")
    store = tmp_path / "meta.json"
    for text in ("{broken", '{"version": 1, "models": []}', '{"version": 99, "models": {}}'):
        store.write_text(text)
        assert MetadataCache(store).get(model).architecture == "llama"
    key = f"{model.absolute()}|{model.stat().st_size}|{model.stat().st_mtime_ns}"
    store.write_text(json.dumps({"version": 1, "models": {key: {"architecture": 5}}}))
    cache = MetadataCache(store)
    assert cache.get(model).architecture == "llama" and cache.reads == 1
    assert ModelMetadata.from_dict({"architecture": 1}) is None


def test_library_snapshot_has_metadata_and_disk_use(tmp_path: Path, starter_model: Path) -> None:
    paths = app_paths(tmp_path / "cove").ensure()
    shutil.copyfile(starter_model, paths.models_dir / "copy.gguf")
    build_gguf(paths.models_dir / "tiny.gguf")
    library = ModelLibrary(paths, hf_cache=tmp_path / "no-cache")
    cache = MetadataCache(paths.data_dir / "model_metadata.json")
    snap = library.snapshot(cache)
    by_name = {item.entry.name: item for item in snap.items}
    assert by_name["copy"].metadata.quantization == "Q4_1"
    assert by_name["tiny"].metadata.architecture == "llama"
    size = starter_model.stat().st_size
    assert snap.disk.total == 2 * size + (paths.models_dir / "tiny.gguf").stat().st_size
    assert snap.disk.by_source["starter"] == size
    assert snap.disk.models_dir == paths.models_dir and snap.disk.free > 0
    assert snap.find(str(paths.models_dir / "copy.gguf")).entry.source == "folder"
    library.snapshot(cache)
    assert cache.reads == 3  # the second listing read no header


def test_parameter_counts_read_as_people_say_them() -> None:
    assert format_parameters(134_515_008) == "135M"
    assert format_parameters(7_241_732_096) == "7.2B"
    assert format_parameters(0) == ""
