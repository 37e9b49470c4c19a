"""Importing a local GGUF through the quarantine: copy with progress, link, refusals, cancel."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from desktop.core.engine.loader import ModelFileError
from desktop.core.engine.probe import cache_key
from desktop.core.library.folder import Cancelled
from desktop.core.library.importer import import_model_file
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.atomic import read_json
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings
from tests.helpers.gguf_builder import build_gguf, copy_prefix


def library(paths: AppPaths, tmp_path: Path, folder: Path | None = None) -> ModelLibrary:
    settings = Settings(models_dir=str(folder) if folder else "")
    return ModelLibrary(paths, settings, hf_cache=tmp_path / "no-hub")


def test_copy_goes_into_the_chosen_models_folder(paths: AppPaths, tmp_path: Path, starter_model: Path) -> None:
    lib = library(paths, tmp_path, tmp_path / "my models")
    seen: list[tuple[int, int]] = []
    entry = import_model_file(starter_model, paths, library=lib, progress=lambda d, t: seen.append((d, t)))
    target = tmp_path / "my models" / starter_model.name
    assert entry.path == target and entry.source == "folder"
    assert target.read_bytes() == starter_model.read_bytes()
    size = starter_model.stat().st_size
    assert seen[-1] == (size, size) and len(seen) >= 2
    assert read_json(paths.probe_file, {})[cache_key(target)]["ok"] is True  # verdict carried, not re-probed
    assert not list(target.parent.glob("*.part"))
    with pytest.raises(ModelFileError, match="already in the library"):
        import_model_file(starter_model, paths, library=lib)


def test_link_remembers_the_file_where_it_is(paths: AppPaths, tmp_path: Path, starter_model: Path) -> None:
    outside = tmp_path / "elsewhere" / "linked.gguf"
    outside.parent.mkdir()
    shutil.copyfile(starter_model, outside)
    lib = library(paths, tmp_path)
    entry = import_model_file(outside, paths, library=lib, link=True)
    assert entry.source == "opened" and entry.path == outside and entry.name == "linked"
    assert entry in lib.entries() and list(lib.models_dir.iterdir()) == []
    # A link to a file already listed (here the starter) is the same model: listed once.
    twin = tmp_path / "elsewhere" / "twin.gguf"
    twin.symlink_to(starter_model)
    import_model_file(twin, paths, library=lib, link=True)
    assert [e.source for e in lib.entries()] == ["starter", "opened"]


def test_malformed_files_are_refused_and_nothing_is_written(paths: AppPaths, tmp_path: Path,
                                                            starter_model: Path) -> None:
    cut = copy_prefix(starter_model, tmp_path / "cut.gguf", 3_000_000)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    foreign = build_gguf(tmp_path / "foreign.gguf", [("general.architecture", 8, "no-such-arch")])
    lib = library(paths, tmp_path)
    for bad, link in ((cut, False), (text, True), (foreign, False), (tmp_path / "missing.gguf", False)):
        with pytest.raises(ModelFileError, match=bad.name):
            import_model_file(bad, paths, library=lib, link=link)
    assert list(lib.models_dir.iterdir()) == []
    assert [e.source for e in lib.entries()] == ["starter"]


def test_split_parts_must_be_complete(paths: AppPaths, tmp_path: Path) -> None:
    first = build_gguf(tmp_path / "s-00001-of-00002.gguf")
    second = build_gguf(tmp_path / "t-00002-of-00002.gguf")
    lib = library(paths, tmp_path)
    with pytest.raises(ModelFileError, match="Part 2 of 2"):
        import_model_file(first, paths, library=lib, prepare=lambda p, a: None)
    with pytest.raises(ModelFileError, match="first part"):
        import_model_file(second, paths, library=lib, prepare=lambda p, a: None)


def test_cancel_leaves_nothing(paths: AppPaths, tmp_path: Path, starter_model: Path) -> None:
    cancel = threading.Event()
    lib = library(paths, tmp_path)
    with pytest.raises(Cancelled):
        import_model_file(starter_model, paths, library=lib, cancel=cancel,
                          progress=lambda done, total: cancel.set())
    assert list(lib.models_dir.iterdir()) == []


def test_cli_entry_point_still_imports(paths: AppPaths, starter_model: Path) -> None:
    entry = import_model_file(starter_model, paths)
    assert entry.path == paths.models_dir / starter_model.name and entry.source == "folder"
