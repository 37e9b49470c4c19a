"""Where Cove keeps its files, and which model files it lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.core.library import model_library as library_module
from desktop.core.library.model_library import STARTER_NAME, ModelLibrary, display_name
from desktop.core.system.paths import BASEDIR_ENV, app_paths


def _below(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


# -- paths --------------------------------------------------------------------------------------
def test_basedir_keeps_everything_below_it(tmp_path: Path) -> None:
    base = tmp_path / "cove home"
    p = app_paths(base)
    for path in (p.data_dir, p.config_dir, p.models_dir, p.database, p.settings_file, p.library_file,
                 p.probe_file, p.crash_marker):
        assert _below(path, base), path
    assert len({p.database, p.settings_file, p.library_file, p.probe_file, p.crash_marker}) == 5
    assert not base.exists()  # nothing is created until ensure()
    assert p.ensure() is p
    assert p.data_dir.is_dir() and p.config_dir.is_dir() and p.models_dir.is_dir()
    assert [f for f in base.rglob("*") if f.is_file()] == []  # folders only


def test_basedir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = app_paths("relative")
    assert p.data_dir.is_absolute()
    assert _below(p.data_dir, tmp_path / "relative")


def test_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASEDIR_ENV, str(tmp_path / "from-env"))
    p = app_paths()
    assert _below(p.database, tmp_path / "from-env")
    assert _below(p.settings_file, tmp_path / "from-env")
    # An explicit folder wins over the environment.
    q = app_paths(tmp_path / "explicit")
    assert _below(q.database, tmp_path / "explicit")


def test_without_basedir_user_folders_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASEDIR_ENV, raising=False)
    p = app_paths()
    assert "Cove" in str(p.data_dir) and "Cove" in str(p.config_dir)
    assert not _below(p.data_dir, tmp_path)


# -- library ------------------------------------------------------------------------------------
@pytest.fixture
def lib_paths(tmp_path: Path):
    return app_paths(tmp_path / "cove").ensure()


def _fake_gguf(path: Path, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\0" * (size - 4))
    return path


def test_starter_model_listed_first(lib_paths, starter_model: Path) -> None:
    _fake_gguf(lib_paths.models_dir / "aaa-first-alphabetically.gguf")
    entries = ModelLibrary(lib_paths).entries()
    first = entries[0]
    assert first.source == "starter"
    assert first.path == starter_model
    assert first.name == STARTER_NAME
    assert first.size == starter_model.stat().st_size > 1_000_000
    assert first.key == str(starter_model)
    assert [e.source for e in entries].count("starter") == 1


def test_models_folder_is_scanned(lib_paths, starter_model: Path) -> None:
    a = _fake_gguf(lib_paths.models_dir / "tiny-model.Q8_0.gguf", 100)
    b = _fake_gguf(lib_paths.models_dir / "sub" / "other.gguf", 50)
    (lib_paths.models_dir / "notes.txt").write_text("not a model")
    (lib_paths.models_dir / "dir.gguf").mkdir()  # a folder named like a model is skipped
    entries = ModelLibrary(lib_paths).entries()
    folder = [e for e in entries if e.source == "folder"]
    assert {e.path for e in folder} == {a, b}
    by_path = {e.path: e for e in folder}
    assert by_path[a].name == "tiny-model.Q8_0"
    assert by_path[a].size == 100 and by_path[b].size == 50


def test_remember_persists_and_forgets_deleted_files(lib_paths, tmp_path: Path, starter_model: Path) -> None:
    outside = _fake_gguf(tmp_path / "elsewhere" / "my-model.gguf")
    entry = ModelLibrary(lib_paths).remember(outside)
    assert entry.source == "opened" and entry.path == outside.resolve() and entry.name == "my-model"

    fresh = ModelLibrary(lib_paths)  # as after a restart
    entries = fresh.entries()
    assert entries[0].source == "starter"
    assert [e.path for e in entries if e.source == "opened"] == [outside.resolve()]

    # Remembering twice does not list it twice.
    fresh.remember(outside)
    assert [e.path for e in ModelLibrary(lib_paths).entries()].count(outside.resolve()) == 1

    outside.unlink()
    assert all(e.path != outside.resolve() for e in ModelLibrary(lib_paths).entries())
    assert ModelLibrary(lib_paths).find(str(outside)) is None


def test_remember_relative_path_is_stored_absolute(lib_paths, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gguf(tmp_path / "rel" / "r.gguf")
    monkeypatch.chdir(tmp_path / "rel")
    entry = ModelLibrary(lib_paths).remember(Path("r.gguf"))
    assert entry.path == (tmp_path / "rel" / "r.gguf").resolve()
    monkeypatch.chdir(tmp_path)
    assert any(e.path == entry.path for e in ModelLibrary(lib_paths).entries())


def test_damaged_library_file_is_ignored(lib_paths, starter_model: Path) -> None:
    lib_paths.library_file.write_text("{not json")
    assert ModelLibrary(lib_paths).entries()[0].source == "starter"
    lib_paths.library_file.write_text('{"opened": [1, null, "/no/such/file.gguf"]}')
    assert [e.source for e in ModelLibrary(lib_paths).entries()] == ["starter"]


def test_find_by_name_file_name_and_path(lib_paths, tmp_path: Path, starter_model: Path) -> None:
    folder_model = _fake_gguf(lib_paths.models_dir / "Phi-Mini.Q4_K_M.gguf")
    lib = ModelLibrary(lib_paths)

    assert lib.find(STARTER_NAME).source == "starter"
    assert lib.find(STARTER_NAME.upper()).source == "starter"  # display names case-insensitively
    assert lib.find(starter_model.name).path == starter_model
    assert lib.find(str(starter_model)).path == starter_model
    assert lib.find("  phi-mini.q4_k_m ").path == folder_model
    assert lib.find("Phi-Mini.Q4_K_M.gguf").path == folder_model
    assert lib.find(str(folder_model)).path == folder_model
    assert lib.find("no-such-model") is None
    assert lib.find(str(tmp_path / "missing.gguf")) is None


def test_find_by_unnormalised_path(lib_paths, starter_model: Path) -> None:
    model = _fake_gguf(lib_paths.models_dir / "m.gguf")
    odd = str(model.parent / ".." / model.parent.name / "m.gguf")
    assert ModelLibrary(lib_paths).find(odd).path == model


def test_default_prefers_existing_key_else_starter(lib_paths, tmp_path: Path, starter_model: Path) -> None:
    model = _fake_gguf(lib_paths.models_dir / "chosen.gguf")
    lib = ModelLibrary(lib_paths)
    assert lib.default(str(model)).path == model
    assert lib.default("").source == "starter"
    assert lib.default(str(tmp_path / "deleted.gguf")).source == "starter"
    model.unlink()
    assert lib.default(str(model)).source == "starter"


def test_default_without_any_model(lib_paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_module, "starter_model_path", lambda: None)
    lib = ModelLibrary(lib_paths)
    assert lib.entries() == []
    assert lib.default() is None
    only = _fake_gguf(lib_paths.models_dir / "only.gguf")
    assert lib.default("something-else").path == only


def test_display_name() -> None:
    assert display_name(Path("/x/Model.Q4_0.gguf")) == "Model.Q4_0"
    assert display_name(Path("/x/MODEL.GGUF")) == "MODEL"
    assert display_name(Path("/x/weights.bin")) == "weights.bin"
