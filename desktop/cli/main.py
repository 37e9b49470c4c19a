"""The command line: the same core as the window, without Qt. :data:`COMMANDS` lists every subcommand.

``cove chat`` (:mod:`desktop.cli.chat`) streams an answer and stores the exchange; ``cove models``
lists, imports and removes library models (:mod:`desktop.cli.models`) and finds, lists and pulls
models on the Hugging Face Hub (:mod:`desktop.cli.hub`, :mod:`desktop.cli.pull`); ``cove search``,
``cove export`` and ``cove import`` are in :mod:`desktop.cli.conversations`; ``cove hardware`` and
``cove bench`` report on this machine. Every command opens the database with recovery: a damaged
file is kept aside and what can be read is recovered, said once on standard error. The command line
takes no window lock: next to a running window, SQLite's locking (WAL, one writer at a time, busy
timeout) keeps concurrent writes safe. A failure ends a command with one line ``cove: reason`` on
standard error (:func:`desktop.cli.output.fail`) and a non-zero exit status.

Adding a subcommand: write ``add_X_arguments(parser)`` and ``cmd_X(args, paths)`` in the module of
its domain and list them in :data:`COMMANDS`; ``"models X"`` makes it an action of ``cove models``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from desktop import __version__
from desktop.cli import chat, chat_tools, conversations, engines, hardware, hub, models, pull, serve
from desktop.cli.bench import add_child_arguments, run_bench
from desktop.cli.bench_measure import memory_child
from desktop.cli.output import fail
from desktop.core.system.logs import setup_logging
from desktop.core.system.paths import AppPaths, app_paths
from desktop.core.system.settings import load_settings

Handler = Callable[[argparse.Namespace, AppPaths], int]
AddArguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name (``"chat"``, or ``"models pull"`` for an action of ``cove models``),
    its help line, the function adding its arguments and the handler running it. The handler gets
    the data folders created and the log file set up, unless ``prepare`` is False (a command that
    writes nothing there gets the paths as they would be)."""

    name: str
    help: str
    add_arguments: AddArguments
    run: Handler
    prepare: bool = True


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command with no arguments of its own."""


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """The arguments of ``cove bench`` (and the hidden ones of its memory child)."""
    bench.add_argument("--quick", action="store_true", help="fewer and shorter runs (about a minute)")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument("--threads", type=int, default=0, help="threads (default: Cove's setting for this machine)")
    bench.add_argument("--model", action="append", help="also measure this GGUF file (repeatable)")
    add_child_arguments(bench)


def cmd_bench(args: argparse.Namespace, paths: AppPaths) -> int:
    """Run the benchmark, or (``--memory-child``, how the frozen app measures) one memory measurement."""
    if args.memory_child:  # the benchmark's child process: writes nothing, no log
        return memory_child(args.memory_child, args.ctx, bool(args.repack), args.threads or 2, args.fill, args.flash)
    return run_bench(args, prepare(paths))


#: Every subcommand, in the order ``cove --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("chat", "ask a model one question and stream the answer", chat.add_chat_arguments, chat.cmd_chat),
    Command("hardware", "show the CPU, memory and llama.cpp build Cove runs on", hardware.add_hardware_arguments,
            hardware.cmd_hardware, prepare=False),
    Command("bench", "measure speed, first-token time, memory and start-up; print a table", add_bench_arguments,
            cmd_bench, prepare=False),
    Command("models", "list the models Cove knows, import one, or find one on the Hugging Face Hub", _no_arguments,
            models.cmd_list),
    Command("models list", "list the library (the default)", _no_arguments, models.cmd_list),
    Command("models import", "check a GGUF file and add it to the library", models.add_import_arguments,
            models.cmd_import),
    Command("models rm", "delete a model from the models folder, or forget a linked one", models.add_rm_arguments,
            models.cmd_rm),
    Command("models search", "search the Hugging Face Hub for GGUF models", hub.add_search_arguments, hub.cmd_search),
    Command("models files", "list a Hub repository's GGUF models with a fit verdict for this computer",
            hub.add_files_arguments, hub.cmd_files),
    Command("models pull", "download a GGUF file from the Hugging Face Hub (resumable, verified)",
            pull.add_pull_arguments, pull.cmd_models_pull),
    Command("serve", "serve the library's models through an OpenAI-compatible API", serve.add_serve_arguments,
            serve.cmd_serve),
    Command("engines", "list the remote engines (OpenAI-compatible servers) and their models",
            engines.add_list_arguments, engines.cmd_list),
    Command("engines list", "list the engines (the default)", engines.add_list_arguments, engines.cmd_list),
    Command("engines add", "add an engine by its base URL (it must answer first)", engines.add_add_arguments,
            engines.cmd_add),
    Command("engines rm", "forget an engine and its API key", engines.add_rm_arguments, engines.cmd_rm),
    Command("tools", "list the MCP servers of mcp.json and their tools", chat_tools.add_tools_arguments,
            chat_tools.cmd_tools),
    Command("search", "search every conversation for words", conversations.add_search_arguments,
            conversations.cmd_search),
    Command("export", "write conversations as Markdown or JSON", conversations.add_export_arguments,
            conversations.cmd_export),
    Command("import", "import conversations (Cove JSON or ChatGPT's conversations.json)",
            conversations.add_import_arguments, conversations.cmd_import),
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register every command of :data:`COMMANDS` on ``sub``; ``"group action"`` names as the
    ACTION subcommands of ``group``."""
    parsers: dict[str, argparse.ArgumentParser] = {}
    actions: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        group, _, action = command.name.partition(" ")
        if not action:
            parser = parsers[group] = sub.add_parser(group, help=command.help)
        else:
            if group not in actions:
                actions[group] = parsers[group].add_subparsers(dest="action", metavar="ACTION")
            parser = actions[group].add_parser(action, help=command.help)
        command.add_arguments(parser)


def find_command(args: argparse.Namespace) -> Command | None:
    """The command a parsed command line names (``cove models`` alone: the ``models`` entry)."""
    action = getattr(args, "action", None)
    name = f"{args.command} {action}" if action else args.command
    return next((command for command in COMMANDS if command.name == name), None)


def prepare(paths: AppPaths) -> AppPaths:
    """Create the data folders and set up the log file (its debug switch from the settings)."""
    paths.ensure()
    setup_logging(paths, debug=load_settings(paths.settings_file).debug_log)
    return paths


def run(args: argparse.Namespace) -> int:
    """Run a parsed command line's subcommand; its exit status."""
    command = find_command(args)
    if command is None:
        return fail(f"unknown command {args.command}", code=2)
    paths = app_paths(args.basedir)
    return command.run(args, prepare(paths) if command.prepare else paths)


__all__ = ["COMMANDS", "Command", "add_commands", "find_command", "run", "__version__"]
