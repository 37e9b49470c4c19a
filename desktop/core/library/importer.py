"""Importing a local GGUF into the library: by copy into the models folder, or by link.

Every import goes through the quarantine first (:func:`desktop.core.engine.loader.prepare_model`):
the file is checked in Python, its fit in memory is judged and the probe loads it in a child
process. A file that fails is refused with the checker's message and nothing is written. A copy is
made under a temporary name (never ``*.gguf``), with progress and a cancel, and renamed into place
only when complete; the probe's verdict is carried over to the copy (same bytes), so it is not
loaded a second time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop.core.engine.loader import ModelFileError, check_model_file, prepare_model
from desktop.core.library.entries import ModelEntry
from desktop.core.library.folder import (
    PART_SUFFIX,
    Cancelled,
    MoveError,
    carry_probe_verdicts,
    check_free_space,
    copy_file,
)
from desktop.core.library.model_library import ModelLibrary, is_later_part, split_parts
from desktop.core.system.paths import AppPaths

Progress = Callable[[int, int], None]
Prepare = Callable[[Path, AppPaths], Any]


def _prepare(path: Path, paths: AppPaths) -> Any:
    return prepare_model(path, paths)


def model_parts(path: Path) -> tuple[Path, ...]:
    """The files that make up the model at ``path`` (all parts of a split model); raises
    :class:`ModelFileError` for a later part or a missing part."""
    if is_later_part(path):
        raise ModelFileError(f"{path.name} is one part of a split model: choose its first part "
                             "(the file named ...-00001-of-...).")
    parts = split_parts(path) or (path,)
    for number, part in enumerate(parts, 1):
        if not part.is_file():
            raise ModelFileError(f"Part {number} of {len(parts)} of this model ({part.name}) is missing: "
                                 "all its parts must be in the same folder.")
    return parts


def import_model_file(path: Path, paths: AppPaths, *, library: ModelLibrary | None = None, link: bool = False,
                      progress: Progress | None = None, cancel: threading.Event | None = None,
                      prepare: Prepare = _prepare) -> ModelEntry:
    """Check and probe ``path``, then copy it into the models folder or (``link``) remember it where
    it is. Returns the library entry. Raises :class:`ModelFileError` with a message for a person,
    or :class:`Cancelled` (nothing is left behind)."""
    library = library or ModelLibrary(paths)
    path = Path(path).expanduser().absolute()
    check_model_file(path)  # the quick check first: a malformed file is refused at once
    parts = model_parts(path)
    prepare(path, paths)  # fit and probe in a child process
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if link:
        return library.remember(path)
    folder = library.models_dir
    targets = [folder / part.name for part in parts]
    for target in targets:
        if target.exists():
            raise ModelFileError(f"{target.name} is already in the library ({target}).")
    total = sum(part.stat().st_size for part in parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_free_space(folder, total, f"a copy of {path.name}")
    except MoveError as exc:
        raise ModelFileError(str(exc)) from exc
    except OSError as exc:
        raise ModelFileError(f"Cove cannot create the models folder {folder}: {exc.strerror or exc}.") from exc
    _copy_parts(list(zip(parts, targets)), total, progress, cancel, path.name)
    carry_probe_verdicts(paths.probe_file, list(zip(parts, targets)))
    return next(e for e in library.entries() if e.path == targets[0])


def _copy_parts(pairs: list[tuple[Path, Path]], total: int, progress: Progress | None,
                cancel: threading.Event | None, name: str) -> None:
    """Copy every part under a temporary name, then rename them all into place."""
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    partials = [target.with_name(target.name + PART_SUFFIX) for _part, target in pairs]
    try:
        for (part, _target), partial in zip(pairs, partials):
            copy_file(part, partial, advance, cancel)
        for (_part, target), partial in zip(pairs, partials):
            os.replace(partial, target)
    except Cancelled:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    except OSError as exc:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise ModelFileError(f"Copying {name} into the library failed: {exc.strerror or exc}") from exc
