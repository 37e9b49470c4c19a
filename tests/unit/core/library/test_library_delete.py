"""Deleting library models: what is deleted, forgotten or refused; split models; disk use."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from desktop.core.library.disk import DELETE, FORGET, REFUSE, disk_use
from desktop.core.library.entries import LibraryError
from desktop.core.library.model_library import ModelLibrary, split_parts
from desktop.core.system.paths import app_paths
from desktop.core.system.settings import Settings
from tests.helpers.gguf_builder import arch, build_gguf
from tests.unit.core.library.test_hf_cache import SHA_NEW, cache_file


@pytest.fixture
def lib(tmp_path: Path) -> ModelLibrary:
    return ModelLibrary(app_paths(tmp_path / "cove").ensure(), hf_cache=tmp_path / "hub")


def test_models_folder_model_is_deleted_with_its_empty_folders(lib: ModelLibrary) -> None:
    model = build_gguf(_mkdir(lib.models_dir / "owner" / "repo") / "m.Q4_0.gguf")
    keep = build_gguf(lib.models_dir / "keep.gguf")
    entry = lib.find("m.Q4_0")
    plan = lib.deletion_plan(entry)
    assert plan.action == DELETE and plan.files == (model,) and plan.frees == model.stat().st_size
    assert "m.Q4_0" in plan.message and str(model.parent) in plan.message and "cannot be undone" in plan.message
    assert lib.delete(entry) == plan
    assert not model.exists() and not (lib.models_dir / "owner").exists()
    assert keep.exists() and lib.models_dir.is_dir()
    assert lib.find("m.Q4_0") is None


def test_linked_file_is_only_forgotten(lib: ModelLibrary, tmp_path: Path) -> None:
    outside = build_gguf(_mkdir(tmp_path / "mine") / "linked.gguf")
    entry = lib.remember(outside)
    plan = lib.deletion_plan(entry)
    assert plan.action == FORGET and plan.files == () and plan.frees == 0
    assert "stays in" in plan.message and str(outside.parent) in plan.message and "nothing is deleted" in plan.message
    lib.delete(entry)
    assert outside.exists()
    assert lib.find(str(outside)) is None and all(e.source != "opened" for e in lib.entries())


def test_hugging_face_cache_model_is_hidden_not_deleted(lib: ModelLibrary, tmp_path: Path) -> None:
    snapshot = cache_file(lib.hf_cache_dir, "owner/Some-GGUF", "some.gguf", SHA_NEW, b"GGUF" + bytes(100))
    entry = next(e for e in lib.entries() if e.source == "hf_cache")
    plan = lib.deletion_plan(entry)
    assert plan.action == FORGET and "hf cache rm model/owner/Some-GGUF" in plan.message
    assert "other tools share" in plan.message
    lib.delete(entry)
    assert snapshot.is_file() and snapshot.resolve().is_file()
    assert all(e.source != "hf_cache" for e in ModelLibrary(lib._paths, hf_cache=lib.hf_cache_dir).entries())
    lib.unhide_all()
    assert [e.path for e in lib.entries() if e.source == "hf_cache"] == [snapshot]


def test_starter_cannot_be_deleted(lib: ModelLibrary, starter_model: Path) -> None:
    entry = lib.find(str(starter_model))
    plan = lib.deletion_plan(entry)
    assert plan.action == REFUSE and "part of Cove" in plan.message
    with pytest.raises(LibraryError, match="cannot be deleted"):
        lib.delete(entry)
    assert starter_model.is_file()


def test_delete_failure_names_the_file(lib: ModelLibrary) -> None:
    model = build_gguf(lib.models_dir / "stuck.gguf")
    entry = lib.find("stuck")
    model.unlink()
    model.mkdir()  # something that cannot be unlinked, even by root
    with pytest.raises(LibraryError, match="stuck.gguf could not be deleted"):
        lib.delete(entry)


def test_split_model_is_one_entry_and_deleted_whole(lib: ModelLibrary) -> None:
    parts = [build_gguf(lib.models_dir / f"big-{i:05d}-of-00003.gguf", [arch()], [(f"t{i}", (32, 32), 0)])
             for i in (1, 2, 3)]
    [entry] = [e for e in lib.entries() if e.source == "folder"]
    assert entry.path == parts[0] and entry.parts == tuple(parts) and entry.files == tuple(parts)
    assert entry.name == "big-00001-of-00003"
    assert entry.size == sum(p.stat().st_size for p in parts)
    plan = lib.deletion_plan(entry)
    assert plan.files == tuple(parts) and "its 3 files" in plan.message
    lib.delete(entry)
    assert not any(p.exists() for p in parts)


def test_split_model_with_a_missing_part_is_not_listed(lib: ModelLibrary) -> None:
    build_gguf(lib.models_dir / "half-00001-of-00002.gguf")
    build_gguf(lib.models_dir / "orphan-00002-of-00002.gguf")
    assert [e for e in lib.entries() if e.source == "folder"] == []


def test_split_parts_names() -> None:
    assert split_parts(Path("/m/x-00001-of-00002.GGUF")) == (Path("/m/x-00001-of-00002.GGUF"),
                                                            Path("/m/x-00002-of-00002.GGUF"))
    assert split_parts(Path("/m/x-00002-of-00002.gguf")) is None
    assert split_parts(Path("/m/x.gguf")) is None


def test_disk_use_counts_each_file_once(lib: ModelLibrary, tmp_path: Path, starter_model: Path) -> None:
    a = build_gguf(lib.models_dir / "a.gguf", size=10_000)
    twin = lib.models_dir / "twin.gguf"
    os.link(a, twin)  # the same bytes under two names
    use = disk_use(lib.entries(), lib.models_dir)
    assert use.total == starter_model.stat().st_size + 10_000
    assert use.by_source == {"starter": starter_model.stat().st_size, "folder": 10_000}
    assert 0 < use.free <= shutil.disk_usage(lib.models_dir).total


def test_models_folder_setting_is_followed(tmp_path: Path) -> None:
    paths = app_paths(tmp_path / "cove").ensure()
    elsewhere = _mkdir(tmp_path / "elsewhere")
    build_gguf(elsewhere / "there.gguf")
    build_gguf(paths.models_dir / "default.gguf")
    settings = Settings(models_dir=str(elsewhere))
    library = ModelLibrary(paths, settings, hf_cache=tmp_path / "hub")
    assert library.models_dir == elsewhere
    assert [e.name for e in library.entries() if e.source == "folder"] == ["there"]
    settings.models_dir = ""
    assert library.models_dir == paths.models_dir


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
