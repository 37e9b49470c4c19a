"""GGUF files already in the huggingface_hub cache, listed where they are (never copied).

The cache folder is found the way huggingface_hub finds it: ``HF_HUB_CACHE``, else the legacy
``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
``~/.cache/huggingface/hub``. Its layout is::

    models--owner--name/
        refs/main                      (the commit sha the branch pointed to)
        blobs/<etag>                   (the bytes)
        snapshots/<sha>/<path>.gguf    (a symlink to ../../blobs/<etag>; a copy on Windows
                                        without symlink rights)

The folder is walked directly: huggingface_hub is not imported (it is slow to import and this
runs whenever the library is listed). Pure file-system work: call it off the GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODEL_PREFIX = "models--"


def hf_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The huggingface_hub cache folder for this user (it may not exist)."""
    env = os.environ if env is None else env

    def expand(value: str) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(value)))

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return expand(env[name])
    if env.get("HF_HOME"):
        return expand(env["HF_HOME"]) / "hub"
    cache_home = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return expand(cache_home) / "huggingface" / "hub"


@dataclass(frozen=True)
class CachedFile:
    """One ``*.gguf`` file in a cached snapshot.

    ``path`` is the snapshot path (what llama.cpp opens: the name ends in ``.gguf``); ``blob`` is
    where the bytes are (the symlink's target, or ``path`` itself when it is a copy).
    """

    repo_id: str
    revision: str
    filename: str
    path: Path
    blob: Path
    size: int
    current: bool  # the snapshot a ref (usually main) points to


def repo_id_from_folder(name: str) -> str | None:
    """``models--owner--name`` -> ``owner/name``; None for other folders (datasets, spaces, locks)."""
    if not name.startswith(MODEL_PREFIX):
        return None
    parts = name[len(MODEL_PREFIX):].split("--")
    if not all(parts):
        return None
    return "/".join(parts)


def _refs(repo_dir: Path) -> set[str]:
    """Commit shas that a ref points to (refs/main, refs/pr/1, ...)."""
    shas: set[str] = set()
    refs = repo_dir / "refs"
    if not refs.is_dir():
        return shas
    for ref in refs.rglob("*"):
        try:
            if ref.is_file() and ref.stat().st_size < 256:
                shas.add(ref.read_text(encoding="ascii", errors="replace").strip())
        except OSError:
            continue
    return shas


def _snapshot_files(repo_id: str, repo_dir: Path) -> list[CachedFile]:
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return []
    current = _refs(repo_dir)
    found: list[CachedFile] = []
    for snapshot in sorted(snapshots.iterdir()):
        if not snapshot.is_dir():
            continue
        for path in sorted(snapshot.rglob("*")):
            if path.suffix.lower() != ".gguf":
                continue
            try:
                if not path.is_file():  # a dangling link: the blob was deleted or never finished
                    continue
                blob = path.resolve()
                size = path.stat().st_size
            except OSError:
                continue
            found.append(CachedFile(repo_id, snapshot.name, path.relative_to(snapshot).as_posix(), path, blob,
                                    size, snapshot.name in current))
    return found


def list_cached_gguf(cache_dir: Path | None = None) -> list[CachedFile]:
    """Every ``*.gguf`` file in the cache's model repositories, one per blob.

    When several snapshots hold the same bytes (the same blob), the one a ref points to is kept.
    Unreadable folders are skipped: the cache belongs to other tools and may be in any state.
    """
    root = hf_cache_dir() if cache_dir is None else cache_dir
    try:
        repos = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    by_blob: dict[Path, CachedFile] = {}
    for repo_dir in repos:
        repo_id = repo_id_from_folder(repo_dir.name)
        if repo_id is None or not repo_dir.is_dir():
            continue
        try:
            files = _snapshot_files(repo_id, repo_dir)
        except OSError:
            continue
        for item in files:
            kept = by_blob.get(item.blob)
            if kept is None or (item.current and not kept.current):
                by_blob[item.blob] = item
    return sorted(by_blob.values(), key=lambda f: (f.repo_id.lower(), f.filename.lower()))
