"""``cove models [list]``, ``cove models import FILE`` and ``cove models rm NAME``: the local library.

The Hub's side of ``cove models`` (``search``, ``files``) is in :mod:`desktop.cli.hub`, ``pull`` in
:mod:`desktop.cli.pull`; every subcommand is listed in :data:`desktop.cli.main.COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from desktop.cli.output import fail
from desktop.core.engine.loader import ModelFileError
from desktop.core.library.disk import DELETE, REFUSE
from desktop.core.library.entries import LibraryError
from desktop.core.library.importer import import_model_file
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.paths import AppPaths
from desktop.core.text.units import format_size


def add_import_arguments(importing: argparse.ArgumentParser) -> None:
    """The arguments of ``cove models import``."""
    importing.add_argument("file")
    importing.add_argument("--link", action="store_true", help="remember the file where it is instead of copying it")


def add_rm_arguments(removing: argparse.ArgumentParser) -> None:
    """The arguments of ``cove models rm``."""
    removing.add_argument("name", help="the model's name, file name or path (as `cove models` lists it)")
    removing.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def cmd_list(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:  # noqa: ARG001
    """Print the library, one model a line."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    entries = ModelLibrary(paths).entries()
    if not entries:
        out.write("No models yet. Install the starter model (see README) or open a .gguf file.\n")
        return 0
    for entry in entries:
        out.write(f"{entry.name}\t{format_size(entry.size)}\t{entry.source}\t{entry.path}\n")
    return 0


def cmd_import(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Validate and probe a model file (in a child process), then copy or link it into the library."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    try:
        entry = import_model_file(Path(args.file), paths, link=args.link)
    except ModelFileError as exc:
        return fail(str(exc))
    out.write(f"imported {entry.name} ({format_size(entry.size)}) -> {entry.path}\n")
    return 0


def cmd_rm(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None,
           answers: TextIO | None = None) -> int:
    """Delete a library model (models folder), or forget a linked or Hugging Face cache one; asks
    for confirmation on standard error unless ``--yes``."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    answers = answers or sys.stdin  # resolved at call time (tests capture sys.stdin)
    library = ModelLibrary(paths)
    entry = library.find(args.name)
    if entry is None:
        return fail(f"no model named {args.name!r} in the library (`cove models` lists them)")
    plan = library.deletion_plan(entry)
    if plan.action == REFUSE:
        return fail(plan.message)
    if not args.yes:
        print(f"{plan.message} [y/N] ", end="", file=sys.stderr, flush=True)
        answer = answers.readline()
        if not answers.isatty():
            print(file=sys.stderr)  # the answer was not echoed: end the question's line
        if answer.strip().lower() not in ("y", "yes"):
            return fail(f"{entry.name} was not {'deleted' if plan.action == DELETE else 'forgotten'}")
    try:
        library.delete(entry)
    except LibraryError as exc:
        return fail(str(exc))
    if plan.action == DELETE:
        out.write(f"deleted {entry.name} ({format_size(plan.frees)} freed)\n")
    else:
        out.write(f"forgot {entry.name} (the file stays at {entry.path})\n")
    return 0
