"""The models folder: where it is, copying into it with progress, and moving it elsewhere.

The person may choose another folder (``Settings.models_dir``). Moving the models there is a
rename on the same file system (instant), and a copy across file systems, which reports progress
and can be cancelled: every file is copied first under a temporary name, and only when all are
complete are they renamed into place and the originals deleted. A cancel or a failure before that
point removes the copies and leaves the old folder exactly as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import Settings, load_settings
from desktop.core.text.units import format_size

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)
CHUNK = 8 << 20
PART_SUFFIX = ".part"  # never ends in .gguf, so the library never lists a half-copied file
FREE_MARGIN = 64 << 20


class Cancelled(Exception):
    """The person cancelled; nothing was changed."""


class MoveError(Exception):
    """The models could not be moved; the message is one sentence for a person."""


def effective_models_dir(paths: AppPaths, settings: Settings | None = None) -> Path:
    """The models folder in use: the one the person chose, else Cove's default.

    Without ``settings`` the settings file is read (the command line does this).
    """
    chosen = (settings if settings is not None else load_settings(paths.settings_file)).models_dir
    return Path(chosen).expanduser() if chosen.strip() else paths.models_dir


def model_files(folder: Path) -> list[Path]:
    """Every ``*.gguf`` file below ``folder``, outside hidden folders (such as ``.partial``)."""
    if not folder.is_dir():
        return []
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(files) if name.lower().endswith(".gguf"))
    return [p for p in found if p.is_file()]


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest parent that exists (to ask a disk about a folder not made yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise :class:`MoveError` when ``folder``'s disk has less than ``needed`` bytes free."""
    probe = existing_ancestor(folder)
    free = shutil.disk_usage(probe).free
    if free < needed + FREE_MARGIN:
        raise MoveError(f"There is not enough free space for {what}: it needs {format_size(needed)} and "
                        f"{probe} has {format_size(free)} free.")


def copy_file(source: Path, target: Path, progress: Callable[[int], None] | None = None,
              cancel: threading.Event | None = None) -> None:
    """Copy ``source`` to ``target`` in chunks (``progress(bytes)`` after each), then fsync it and
    give it the source's modification time. Raises :class:`Cancelled` (the partial target is
    removed) or OSError."""
    try:
        with source.open("rb") as src, target.open("wb") as dst:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                block = src.read(CHUNK)
                if not block:
                    break
                dst.write(block)
                if progress is not None:
                    progress(len(block))
            dst.flush()
            os.fsync(dst.fileno())
        st = source.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def carry_probe_verdicts(probe_file: Path, pairs: list[tuple[Path, Path]]) -> None:
    """Record the quarantine verdicts of each old file for its new copy or new place (the same
    bytes, size and modification time, moved or copied by Cove), so the probe does not load the
    model again. Call it before the old folder is tidied away (its path is resolved)."""
    cache = read_json(probe_file, {})
    if not isinstance(cache, dict):
        return
    changed = False
    for old, new in pairs:
        try:
            st = new.stat()
        except OSError:
            continue
        old_prefix, new_prefix = f"{old.resolve()}|", f"{new.resolve()}|"
        identity = f"{st.st_size}|{st.st_mtime_ns}|"
        for key in [k for k in cache if k.startswith(old_prefix)]:
            rest = key[len(old_prefix):]
            if rest.startswith(identity) and new_prefix + rest not in cache:
                cache[new_prefix + rest] = cache[key]
                changed = True
    if changed:
        write_json_atomic(probe_file, cache)


@dataclass(frozen=True)
class MovePlan:
    """What moving the models folder will do: ``files`` as (from, to) pairs."""

    source: Path
    target: Path
    files: tuple[tuple[Path, Path], ...]
    total: int
    same_device: bool


def plan_move(source: Path, target: Path) -> MovePlan:
    """Check a move of every model in ``source`` to ``target`` (created when missing)."""
    source, target = source.expanduser().absolute(), target.expanduser().absolute()
    if target == source:
        raise MoveError("That is already the models folder.")
    if target.is_relative_to(source):
        raise MoveError("The new models folder cannot be inside the current one.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MoveError(f"Cove cannot create the folder {target}: {exc.strerror or exc}.") from exc
    if not os.access(target, os.W_OK):
        raise MoveError(f"Cove cannot write to {target}: choose a folder you own.")
    pairs, total = [], 0
    for path in model_files(source):
        destination = target / path.relative_to(source)
        if destination.exists():
            raise MoveError(f"{destination} already exists: move or delete it first, then try again.")
        pairs.append((path, destination))
        total += path.stat().st_size
    same = not pairs or os.stat(source).st_dev == os.stat(target).st_dev
    return MovePlan(source, target, tuple(pairs), total, same)


def move_models(plan: MovePlan, progress: Progress | None = None, cancel: threading.Event | None = None,
                probe_file: Path | None = None, *, copy: bool | None = None) -> dict[str, str]:
    """Carry out ``plan``; returns {old path: new path}. ``copy`` forces (True) or forbids
    (False) copying; by default only a move across file systems copies."""
    copying = (not plan.same_device) if copy is None else copy
    moved = _copy_then_commit(plan, progress, cancel) if copying else _rename_all(plan, progress)
    if probe_file is not None:
        carry_probe_verdicts(probe_file, moved)
    for old, _new in moved:
        remove_empty_parents(old.parent, plan.source)
    return {str(old): str(new) for old, new in moved}


def _rename_all(plan: MovePlan, progress: Progress | None) -> list[tuple[Path, Path]]:
    done: list[tuple[Path, Path]] = []
    moved_bytes = 0
    try:
        for old, new in plan.files:
            new.parent.mkdir(parents=True, exist_ok=True)
            size = old.stat().st_size
            os.rename(old, new)
            done.append((old, new))
            moved_bytes += size
            if progress is not None:
                progress(moved_bytes, plan.total)
    except OSError as exc:
        for old, new in reversed(done):  # put back what was moved: all or nothing
            with contextlib.suppress(OSError):
                os.rename(new, old)
        if exc.errno == errno.EXDEV:
            raise MoveError("The folders are on different disks after all; try again.") from exc
        raise MoveError(f"Moving the models failed: {exc.strerror or exc}. Nothing was moved.") from exc
    return done


def _copy_then_commit(plan: MovePlan, progress: Progress | None,
                      cancel: threading.Event | None) -> list[tuple[Path, Path]]:
    check_free_space(plan.target, plan.total, "the models")
    copied: list[Path] = []
    committed: list[Path] = []
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, plan.total)

    try:
        for old, new in plan.files:
            new.parent.mkdir(parents=True, exist_ok=True)
            partial = new.with_name(new.name + PART_SUFFIX)
            copied.append(partial)
            copy_file(old, partial, advance, cancel)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        for _old, new in plan.files:  # the commit: every copy is complete
            os.replace(new.with_name(new.name + PART_SUFFIX), new)
            committed.append(new)
    except Cancelled:
        _discard(copied, plan.target)
        raise
    except OSError as exc:
        _discard(copied + committed, plan.target)
        raise MoveError(f"Copying the models failed: {exc.strerror or exc}. The old folder is unchanged.") from exc
    for old, _new in plan.files:
        old.unlink(missing_ok=True)
    return list(plan.files)


def _discard(files: list[Path], root: Path) -> None:
    for path in files:
        path.unlink(missing_ok=True)
        remove_empty_parents(path.parent, root)


def remove_empty_parents(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, never ``stop`` or above it."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def follow_move(settings: Settings, moved: dict[str, str]) -> None:
    """Point settings that name a moved file (last model, per-model GPU layers) at its new place."""
    if settings.last_model in moved:
        settings.last_model = moved[settings.last_model]
    settings.gpu_layers_by_model = {moved.get(k, k): v for k, v in settings.gpu_layers_by_model.items()}
