"""Models already in the huggingface_hub cache are found where they are, in its real layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from desktop.core.library.hf_cache import hf_cache_dir, list_cached_gguf, repo_id_from_folder
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.paths import app_paths
from tests.helpers.gguf_builder import build_gguf

SHA_OLD = "a" * 40
SHA_NEW = "b" * 40


def cache_file(cache: Path, repo_id: str, filename: str, revision: str, data: Path | bytes,
               *, ref: str | None = "main", etag: str | None = None) -> Path:
    """Put ``data`` into ``cache`` the way huggingface_hub does: a blob, a snapshot symlink to it
    (relative, as hf_hub_download makes it), and a ref naming the revision."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    blob = repo / "blobs" / (etag or f"{abs(hash((repo_id, filename, revision))):x}")
    blob.parent.mkdir(parents=True, exist_ok=True)
    if not blob.exists():
        if isinstance(data, Path):
            os.link(data, blob)  # the real bytes, without a copy
        else:
            blob.write_bytes(data)
    snapshot = repo / "snapshots" / revision / filename
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return snapshot


def test_cache_folder_follows_huggingface_hub_rules(tmp_path: Path) -> None:
    home = str(Path.home())
    assert hf_cache_dir({}) == Path(home) / ".cache" / "huggingface" / "hub"
    assert hf_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "huggingface" / "hub"
    assert hf_cache_dir({"HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "hf" / "hub"
    assert hf_cache_dir({"HUGGINGFACE_HUB_CACHE": str(tmp_path / "legacy"), "HF_HOME": "/y"}) == tmp_path / "legacy"
    assert hf_cache_dir({"HF_HUB_CACHE": str(tmp_path / "new"), "HUGGINGFACE_HUB_CACHE": "/z",
                         "HF_HOME": "/y"}) == tmp_path / "new"
    assert hf_cache_dir({"HF_HOME": "~/somewhere"}) == Path(home) / "somewhere" / "hub"


def test_cache_folder_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "from-env"))
    assert hf_cache_dir() == tmp_path / "from-env"


def test_repo_folder_names() -> None:
    assert repo_id_from_folder("models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF") == \
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    assert repo_id_from_folder("models--gpt2") == "gpt2"
    for other in ("datasets--a--b", "spaces--a--b", ".locks", "models--", "models--a----b", "blobs"):
        assert repo_id_from_folder(other) is None


def test_lists_real_model_in_place(tmp_path: Path, starter_model: Path) -> None:
    cache = tmp_path / "hub"
    snapshot = cache_file(cache, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "smollm2.Q4_1.gguf", SHA_NEW,
                          starter_model)
    [found] = list_cached_gguf(cache)
    assert found.repo_id == "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    assert found.revision == SHA_NEW and found.current
    assert found.filename == "smollm2.Q4_1.gguf"
    assert found.path == snapshot and found.path.is_symlink()
    assert found.blob.parent.name == "blobs" and found.blob.samefile(starter_model)
    assert found.size == starter_model.stat().st_size
    assert [p for p in cache.rglob("*") if p.is_file() and not p.is_symlink()
            and p.stat().st_nlink == 1 and p.stat().st_size > 1000] == []  # nothing was copied


def test_one_entry_per_blob_preferring_the_current_revision(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    model = build_gguf(tmp_path / "m.gguf")
    cache_file(cache, "owner/repo", "m.gguf", SHA_OLD, model, ref=None, etag="same")
    cache_file(cache, "owner/repo", "m.gguf", SHA_NEW, model, etag="same")  # same bytes, newer commit
    [found] = list_cached_gguf(cache)
    assert found.revision == SHA_NEW and found.current
    cache_file(cache, "owner/repo", "sub/dir/other.gguf", SHA_NEW, b"GGUF-other", etag="other")
    assert [f.filename for f in list_cached_gguf(cache)] == ["m.gguf", "sub/dir/other.gguf"]


def test_skips_what_is_not_a_finished_model(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    ok = cache_file(cache, "a/good", "good.gguf", SHA_NEW, b"GGUF")
    dangling = cache_file(cache, "a/broken", "gone.gguf", SHA_NEW, b"GGUF")
    dangling.resolve().unlink()  # the blob was deleted by hand
    cache_file(cache, "a/good", "README.md", SHA_NEW, b"# readme")
    dataset = cache / "datasets--a--d" / "snapshots" / SHA_NEW
    dataset.mkdir(parents=True)
    (dataset / "data.gguf").write_bytes(b"GGUF")
    (cache / "models--a--nosnap").mkdir()
    (cache / "stray.gguf").write_bytes(b"GGUF")
    (cache / ".locks").mkdir()
    incomplete = cache / "models--a--good" / "blobs" / "x.incomplete"
    incomplete.write_bytes(b"GG")
    assert [f.path for f in list_cached_gguf(cache)] == [ok]


def test_missing_or_unreadable_cache_is_empty(tmp_path: Path) -> None:
    assert list_cached_gguf(tmp_path / "absent") == []
    (tmp_path / "file").write_text("x")
    assert list_cached_gguf(tmp_path / "file") == []


def test_windows_style_copies_are_listed_too(tmp_path: Path) -> None:
    """Without symlink rights huggingface_hub stores the file itself in the snapshot."""
    cache = tmp_path / "hub"
    path = cache / "models--o--r" / "snapshots" / SHA_NEW / "m.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF" + bytes(60))
    [found] = list_cached_gguf(cache)
    assert found.blob == path.resolve() and found.size == 64 and not found.current


def test_library_lists_cache_models_with_their_repository(tmp_path: Path, starter_model: Path) -> None:
    cache = tmp_path / "hub"
    snapshot = cache_file(cache, "bartowski/Some-GGUF", "Some-Q4_K_M.gguf", SHA_NEW, starter_model)
    paths = app_paths(tmp_path / "cove").ensure()
    library = ModelLibrary(paths, hf_cache=cache)
    cached = [e for e in library.entries() if e.source == "hf_cache"]
    assert [(e.path, e.name, e.repo_id) for e in cached] == [(snapshot, "Some-Q4_K_M", "bartowski/Some-GGUF")]
    assert library.find("Some-Q4_K_M").path == snapshot
    # The same bytes already listed as the starter are not listed twice when linked by their path.
    library.remember(snapshot)
    assert [e.source for e in library.entries()].count("hf_cache") == 1
