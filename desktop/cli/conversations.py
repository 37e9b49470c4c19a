"""The conversation commands of ``cove``: search, export, import (no Qt, no model).

``cove search QUERY``                          matching messages, one a line:
                                               ``ID<TAB>title<TAB>role<TAB>snippet`` with [matches]
``cove export ID|--all [--format md|json] [--output PATH]``
``cove import FILE``                           Cove JSON or ChatGPT's conversations.json (or .zip)

Errors end the command with a one-line reason on standard error and a non-zero exit status
(``search`` exits 1 when nothing matches, like grep).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from desktop.cli.output import fail, note
from desktop.core.conversations.export_import import ImportFormatError, export_conversations, import_file, write_export
from desktop.core.conversations.records import StoreError
from desktop.core.conversations.recovery import open_store_with_recovery
from desktop.core.conversations.search import mark_matches
from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths


def open_store(paths: AppPaths, err: TextIO | None = None) -> Store:
    """Open the conversation database, recovering a damaged one; says so on standard error once.
    Raises StoreError when it cannot be opened."""
    store, report = open_store_with_recovery(paths.database)
    if report is not None:
        note(report.message, err)
    return store


def add_search_arguments(search: argparse.ArgumentParser) -> None:
    """The arguments of ``cove search``."""
    search.add_argument("query", help="words to look for (all must occur; the last may be the start of a word)")
    search.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")


def add_export_arguments(export: argparse.ArgumentParser) -> None:
    """The arguments of ``cove export``."""
    export.add_argument("conversation", nargs="?", type=int, default=None, help="the conversation id")
    export.add_argument("--all", action="store_true", help="every conversation")
    export.add_argument("--format", choices=("md", "json"), default=None,
                        help="md (readable, the shown branch) or json (everything, re-importable); "
                             "default: from the output's extension, else md")
    export.add_argument("--output", default="-", help="the file to write ('-' or nothing: standard output)")


def add_import_arguments(importing: argparse.ArgumentParser) -> None:
    """The arguments of ``cove import``."""
    importing.add_argument("file")


def cmd_search(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Print the messages matching the query, best first."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    try:
        store = open_store(paths)
    except StoreError as exc:
        return fail(str(exc))
    try:
        hits = store.search(args.query, limit=max(1, args.limit))
    finally:
        store.close()
    if not hits:
        return fail(f"no messages match {args.query!r}")
    for hit in hits:
        snippet = " ".join(mark_matches(hit.snippet).split())
        title = " ".join(hit.conversation_title.split())
        out.write(f"{hit.conversation_id}\t{title}\t{hit.role}\t{snippet}\n")
    return 0


def cmd_export(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Export one conversation or all of them."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    if args.all == (args.conversation is not None):
        return fail("give either a conversation id or --all", code=2)
    to_stdout = args.output in ("-", "")
    output = Path(args.output)
    fmt = args.format or ("json" if output.suffix.lower() == ".json" else "md")
    if not to_stdout and not output.parent.is_dir():
        return fail(f"cannot write {output}: the folder {output.parent} does not exist")
    if not to_stdout and output.is_dir():
        return fail(f"cannot write {output}: it is a folder")
    ids = None if args.all else [args.conversation]
    try:
        store = open_store(paths)
    except StoreError as exc:
        return fail(str(exc))
    try:
        if to_stdout:
            out.write(export_conversations(store, fmt, ids))
            return 0
        count = write_export(store, output, fmt, ids)
    except LookupError as exc:
        return fail(str(exc.args[0]) if exc.args else str(exc))
    except OSError as exc:
        return fail(f"cannot write {output}: {exc.strerror or exc}")
    finally:
        store.close()
    note(f"exported {count} conversation{'s' if count != 1 else ''} to {output}")
    return 0


def cmd_import(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Import a file of conversations, all or nothing."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    path = Path(args.file)
    if not path.is_file():
        return fail(f"{path}: no such file")
    try:
        store = open_store(paths)
    except StoreError as exc:
        return fail(str(exc))
    try:
        result = import_file(store, path)
    except ImportFormatError as exc:
        return fail(f"{path.name}: {exc}")
    finally:
        store.close()
    source = {"cove": "a Cove export", "chatgpt": "a ChatGPT export"}.get(result.source, result.source)
    out.write(f"imported {result.conversations} conversation{'s' if result.conversations != 1 else ''} "
              f"({result.messages} messages) from {source}")
    if result.skipped:
        out.write(f"; {result.skipped} messages left out (tool calls, hidden context, empty)")
    out.write("\n")
    return 0

