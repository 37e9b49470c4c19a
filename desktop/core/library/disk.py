"""Deleting library models and counting the disk they use.

What a delete does depends on where the model came from: a model in the models folder is deleted
from disk; a linked file is only forgotten (it stays where it is); a model in the Hugging Face
cache is hidden from Cove's list (the cache is shared with other tools, whose own command frees
it); the starter and models bundled with Cove cannot be deleted. :func:`deletion_plan` words each
case for the confirmation the person sees before anything happens.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from desktop.core.library.entries import LibraryError, ModelEntry
from desktop.core.library.folder import existing_ancestor, remove_empty_parents
from desktop.core.models.metadata import ModelMetadata
from desktop.core.text.units import format_size

DELETE, FORGET, REFUSE = "delete", "forget", "refuse"


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a model does. ``action`` is 'delete' (``files`` are removed from disk and
    ``frees`` bytes are freed), 'forget' (Cove stops listing it; nothing on disk changes) or
    'refuse'. ``message`` says so in a sentence or two for the confirmation dialog."""

    action: str
    message: str
    files: tuple[Path, ...] = ()
    frees: int = 0


def deletion_plan(entry: ModelEntry) -> DeletionPlan:
    """How ``entry`` would be deleted, worded for the person."""
    if entry.source in ("starter", "bundled"):
        return DeletionPlan(REFUSE, f"{entry.name} is part of Cove and cannot be deleted.")
    where = entry.path.parent
    if entry.source == "opened":
        return DeletionPlan(FORGET, f"Cove will forget {entry.name}. The file itself stays in {where}; "
                                    "nothing is deleted.")
    if entry.source == "hf_cache":
        return DeletionPlan(FORGET, f"Cove will stop listing {entry.name}. The file stays in the Hugging Face "
                                    f"cache ({where}), which other tools share; to free its "
                                    f"{format_size(entry.size)}, run: hf cache rm model/{entry.repo_id}")
    count = len(entry.files)
    what = "its file" if count == 1 else f"its {count} files"
    return DeletionPlan(DELETE, f"Delete {entry.name}? This removes {what} ({format_size(entry.size)}) from "
                                f"{where}. It cannot be undone.", entry.files, entry.size)


def delete_files(files: Sequence[Path], models_dir: Path) -> None:
    """Remove ``files``, then the folders that held them while empty (up to ``models_dir``).

    Raises :class:`desktop.core.library.entries.LibraryError` naming the file that could not be deleted.
    """
    for path in files:
        try:
            path.unlink(missing_ok=True)
        except PermissionError as exc:
            raise LibraryError(f"{path.name} could not be deleted: permission denied (is it open in another "
                               "program?).") from exc
        except OSError as exc:
            raise LibraryError(f"{path.name} could not be deleted: {exc.strerror or exc}.") from exc
        remove_empty_parents(path.parent, models_dir)


@dataclass(frozen=True)
class DiskUse:
    """Bytes used by the listed models: ``total`` (each file counted once), ``by_source`` (per
    :data:`desktop.core.library.entries.SOURCE_LABELS` key), the ``models_dir`` and the ``free`` bytes
    on its disk (-1 when unknown)."""

    total: int
    by_source: dict[str, int] = field(default_factory=dict)
    models_dir: Path = Path()
    free: int = -1


def disk_use(entries: Sequence[ModelEntry], models_dir: Path) -> DiskUse:
    """Add up the models' sizes; a file listed twice (a hard link, the same blob) counts once."""
    seen: set[tuple[int, int]] = set()
    total, by_source = 0, {}
    for entry in entries:
        for path in entry.files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
            by_source[entry.source] = by_source.get(entry.source, 0) + st.st_size
    try:
        free = shutil.disk_usage(existing_ancestor(models_dir)).free
    except OSError:
        free = -1
    return DiskUse(total, by_source, models_dir, free)


@dataclass(frozen=True)
class LibraryItem:
    """One model as the library pane shows it."""

    entry: ModelEntry
    metadata: ModelMetadata
    deletion: DeletionPlan


@dataclass(frozen=True)
class LibrarySnapshot:
    """The whole library at one moment: its items and its disk use."""

    items: tuple[LibraryItem, ...]
    disk: DiskUse

    def find(self, key: str) -> LibraryItem | None:
        """The item whose entry key (absolute path) is ``key``."""
        return next((item for item in self.items if item.entry.key == key), None)
