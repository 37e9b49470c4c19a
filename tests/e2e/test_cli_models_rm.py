"""`cove models rm NAME` as a person runs it: real processes, real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.system.paths import AppPaths, app_paths
from tests.unit.core.library.test_hf_cache import SHA_NEW, cache_file

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path: Path) -> AppPaths:
    return app_paths(tmp_path / "cove").ensure()


def cove(paths: AppPaths, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent),
               HF_HUB_CACHE=str(paths.data_dir.parent / "hub"))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=60, input=input if input is not None else "")


def test_rm_asks_then_deletes_a_models_folder_model(home: AppPaths, starter_model: Path) -> None:
    model = home.models_dir / "owner" / "repo" / "copy.Q4_1.gguf"
    model.parent.mkdir(parents=True)
    shutil.copyfile(starter_model, model)

    declined = cove(home, "models", "rm", "copy.Q4_1", input="n\n")
    assert declined.returncode == 1 and model.exists()
    assert "Delete copy.Q4_1?" in declined.stderr and "[y/N]" in declined.stderr
    assert declined.stderr.strip().splitlines()[-1] == "cove: copy.Q4_1 was not deleted"

    no_answer = cove(home, "models", "rm", "copy.Q4_1")  # standard input closed: no means no
    assert no_answer.returncode == 1 and model.exists()

    done = cove(home, "models", "rm", "copy.Q4_1", input="y\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deleted copy.Q4_1 (98.4 MB freed)\n"
    assert not model.exists() and not (home.models_dir / "owner").exists()
    assert "copy.Q4_1" not in cove(home, "models").stdout


def test_rm_yes_by_file_name_and_path(home: AppPaths, starter_model: Path) -> None:
    a = home.models_dir / "a.gguf"
    b = home.models_dir / "b.gguf"
    for path in (a, b):
        shutil.copyfile(starter_model, path)
    assert cove(home, "models", "rm", "a.gguf", "--yes").returncode == 0
    assert cove(home, "models", "rm", str(b), "-y").returncode == 0
    assert not a.exists() and not b.exists()


def test_rm_forgets_a_linked_file_and_keeps_it(home: AppPaths, tmp_path: Path, starter_model: Path) -> None:
    outside = tmp_path / "mine" / "linked.gguf"
    outside.parent.mkdir()
    shutil.copyfile(starter_model, outside)  # a link to the starter itself would be the starter
    imported = cove(home, "models", "import", "--link", str(outside))
    assert imported.returncode == 0, imported.stderr
    result = cove(home, "models", "rm", "linked", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("forgot linked (the file stays at")
    assert outside.is_file() and "linked" not in cove(home, "models").stdout


def test_rm_hides_a_hugging_face_cache_model(home: AppPaths, tmp_path: Path, starter_model: Path) -> None:
    snapshot = cache_file(home.data_dir.parent / "hub", "owner/Cached-GGUF", "cached.gguf", SHA_NEW, starter_model)
    assert "hf_cache" in cove(home, "models").stdout
    result = cove(home, "models", "rm", "cached", input="yes\n")
    assert result.returncode == 0, result.stderr
    assert "hf cache rm model/owner/Cached-GGUF" in result.stderr
    assert snapshot.is_file() and "cached" not in cove(home, "models").stdout


def test_rm_refusals_are_one_line(home: AppPaths, starter_model: Path) -> None:
    missing = cove(home, "models", "rm", "no-such-model", "--yes")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.splitlines() == ["cove: no model named 'no-such-model' in the library "
                                           "(`cove models` lists them)"]
    starter = cove(home, "models", "rm", starter_model.name, "--yes")
    assert starter.returncode == 1 and starter_model.is_file()
    assert starter.stderr.splitlines() == ["cove: SmolLM2-135M-Instruct (Q4_1) is part of Cove and cannot be deleted."]
