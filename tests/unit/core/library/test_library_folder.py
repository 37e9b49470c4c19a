"""Moving the models folder: rename on one disk, copy with progress across disks, cancel, refuse."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from desktop.core.engine.probe import cache_key
from desktop.core.library.folder import (
    Cancelled,
    MoveError,
    carry_probe_verdicts,
    copy_file,
    effective_models_dir,
    follow_move,
    model_files,
    move_models,
    plan_move,
)
from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.paths import app_paths
from desktop.core.system.settings import Settings, load_settings, save_settings
from tests.helpers.gguf_builder import build_gguf

SHM = Path("/dev/shm")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def old(tmp_path: Path, starter_model: Path) -> Path:
    folder = tmp_path / "old"
    (folder / "owner" / "repo").mkdir(parents=True)
    shutil.copyfile(starter_model, folder / "owner" / "repo" / "real.gguf")
    build_gguf(folder / "tiny.gguf", size=5000)
    (folder / ".partial").mkdir()
    (folder / ".partial" / "x.part").write_bytes(b"partial download")
    (folder / "notes.txt").write_text("kept")
    return folder


def test_effective_folder(tmp_path: Path) -> None:
    paths = app_paths(tmp_path / "cove")
    assert effective_models_dir(paths, Settings()) == paths.models_dir
    assert effective_models_dir(paths, Settings(models_dir=str(tmp_path / "m"))) == tmp_path / "m"
    paths.ensure()
    save_settings(paths.settings_file, Settings(models_dir="~/cove-models"))
    assert effective_models_dir(paths) == Path.home() / "cove-models"  # from the settings file
    assert load_settings(paths.settings_file).models_dir == "~/cove-models"


def test_model_files_skip_hidden_folders_and_other_files(old: Path) -> None:
    assert [p.relative_to(old).as_posix() for p in model_files(old)] == ["tiny.gguf", "owner/repo/real.gguf"]


def test_rename_on_the_same_disk(old: Path, tmp_path: Path) -> None:
    before = {p.relative_to(old): digest(p) for p in model_files(old)}
    plan = plan_move(old, tmp_path / "new")
    assert plan.same_device and len(plan.files) == 2
    assert plan.total == sum((old / p).stat().st_size for p in before)
    seen: list[tuple[int, int]] = []
    moved = move_models(plan, lambda done, total: seen.append((done, total)))
    assert {Path(k).relative_to(old) for k in moved} == set(before)
    assert {p.relative_to(tmp_path / "new"): digest(p) for p in model_files(tmp_path / "new")} == before
    assert model_files(old) == [] and not (old / "owner").exists()
    assert (old / ".partial" / "x.part").exists() and (old / "notes.txt").exists()  # only models move
    assert seen[-1] == (plan.total, plan.total)


def test_copy_across_disks_reports_progress_and_keeps_probe_verdicts(old: Path, tmp_path: Path) -> None:
    probes = tmp_path / "probes.json"
    real = old / "owner" / "repo" / "real.gguf"
    write_json_atomic(probes, {cache_key(real): {"ok": True, "message": "works"}})
    before = {p.relative_to(old): digest(p) for p in model_files(old)}
    other_disk = SHM.is_dir() and SHM.stat().st_dev != old.stat().st_dev
    target = SHM / f"cove-test-{tmp_path.name}" if other_disk else tmp_path / "new"
    try:
        plan = plan_move(old, target)
        assert plan.same_device is not other_disk
        seen: list[int] = []
        move_models(plan, lambda done, total: seen.append(done), probe_file=probes,
                    copy=None if other_disk else True)
        assert {p.relative_to(target): digest(p) for p in model_files(target)} == before
        assert model_files(old) == []
        assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == plan.total
        moved = target / "owner" / "repo" / "real.gguf"
        assert read_json(probes, {})[cache_key(moved)]["ok"] is True  # no second probe after a move
        assert not list(target.rglob("*.part"))
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_cancel_leaves_the_old_folder_as_it_was(old: Path, tmp_path: Path) -> None:
    before = {p.relative_to(old): digest(p) for p in model_files(old)}
    plan = plan_move(old, tmp_path / "new")
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done > total // 3:
            cancel.set()

    with pytest.raises(Cancelled):
        move_models(plan, progress, cancel, copy=True)
    assert {p.relative_to(old): digest(p) for p in model_files(old)} == before
    assert [p for p in (tmp_path / "new").rglob("*") if p.is_file()] == []


def test_refusals(old: Path, tmp_path: Path) -> None:
    with pytest.raises(MoveError, match="already the models folder"):
        plan_move(old, old)
    with pytest.raises(MoveError, match="inside the current one"):
        plan_move(old, old / "sub")
    clash = tmp_path / "clash"
    clash.mkdir()
    build_gguf(clash / "tiny.gguf")
    with pytest.raises(MoveError, match="tiny.gguf already exists"):
        plan_move(old, clash)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(MoveError, match="cannot create the folder"):
        plan_move(old, blocker / "models")


def test_not_enough_space_is_said_before_copying(old: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_move(old, tmp_path / "new")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))  # a nearly full disk
    with pytest.raises(MoveError, match="not enough free space"):
        move_models(plan, copy=True)
    assert len(model_files(old)) == 2 and model_files(tmp_path / "new") == []


def test_empty_folder_moves_instantly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    plan = plan_move(tmp_path / "empty", tmp_path / "new")
    assert plan.files == () and plan.total == 0 and move_models(plan) == {}


def test_settings_follow_moved_files() -> None:
    settings = Settings(last_model="/old/a.gguf", gpu_layers_by_model={"/old/a.gguf": 3, "/x/b.gguf": 1})
    follow_move(settings, {"/old/a.gguf": "/new/a.gguf"})
    assert settings.last_model == "/new/a.gguf"
    assert settings.gpu_layers_by_model == {"/new/a.gguf": 3, "/x/b.gguf": 1}


def test_copy_file_cancel_removes_the_partial(tmp_path: Path, starter_model: Path) -> None:
    cancel = threading.Event()
    target = tmp_path / "copy.part"
    with pytest.raises(Cancelled):
        copy_file(starter_model, target, lambda n: cancel.set(), cancel)
    assert not target.exists()
    copy_file(starter_model, target)
    assert target.stat().st_mtime_ns == starter_model.stat().st_mtime_ns


def test_probe_verdicts_only_carry_to_identical_files(tmp_path: Path) -> None:
    a = build_gguf(tmp_path / "a.gguf")
    probes = tmp_path / "probes.json"
    write_json_atomic(probes, {cache_key(a): {"ok": True}})
    b = build_gguf(tmp_path / "b.gguf", size=999)  # different size: not a copy of a
    carry_probe_verdicts(probes, [(a, b)])
    assert cache_key(b) not in read_json(probes, {})
