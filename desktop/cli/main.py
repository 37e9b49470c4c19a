"""The command line: the same core as the window, without Qt.

``cove chat [--model FILE] "prompt"`` streams an answer and stores the exchange;
``cove models`` lists the library; ``cove search``, ``cove export`` and ``cove import`` are in
:mod:`desktop.cli.conversations`. Every command opens the database with recovery: a damaged file is
kept aside and what can be read is recovered, said once on standard error. The command line takes
no window lock: next to a running window, SQLite's locking (WAL, one writer at a time, busy
timeout) keeps concurrent writes safe.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TextIO

from desktop import __version__
from desktop.core.conversations.answer_recorder import AnswerRecorder
from desktop.core.library.model_library import ModelLibrary
from desktop.core.engine.loader import ModelFileError, check_model_file, load_runtime
from desktop.core.system.paths import AppPaths, app_paths
from desktop.core.system.settings import GenerationSettings, load_settings
from desktop.cli.conversations import COMMANDS as CONVERSATION_COMMANDS
from desktop.cli.conversations import add_conversation_commands, open_store
from desktop.cli.models import add_model_commands, run_model_command
from desktop.core.conversations.store import COMPLETE, FAILED, STOPPED, STREAMING, StoreError, suggest_title


def add_commands(sub: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse's public type
    """Register the subcommands on ``sub``."""
    chat = sub.add_parser("chat", help="ask a model one question and stream the answer")
    chat.add_argument("prompt", nargs="?", default=None, help="the question ('-' reads standard input)")
    chat.add_argument("--model", help="a GGUF file or a library model name (default: the last used or the starter)")
    chat.add_argument("--conversation", type=int, default=0, help="continue this stored conversation")
    chat.add_argument("--system", default=None, help="system prompt")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--top-p", type=float, default=None)
    chat.add_argument("--top-k", type=int, default=None)
    chat.add_argument("--min-p", type=float, default=None)
    chat.add_argument("--repeat-penalty", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--ctx", type=int, default=None, help="context length in tokens (default: min(trained, 4096))")
    chat.add_argument("--threads", type=int, default=None)
    chat.add_argument("--stats", action="store_true", help="print speed figures to standard error")
    hardware = sub.add_parser("hardware", help="show the CPU, memory and llama.cpp build Cove runs on")
    hardware.add_argument("--json", action="store_true", help="print the raw report as JSON")
    bench = sub.add_parser("bench", help="measure speed, first-token time, memory and start-up; print a table")
    bench.add_argument("--quick", action="store_true", help="fewer and shorter runs (about a minute)")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument("--threads", type=int, default=0, help="threads (default: Cove's setting for this machine)")
    bench.add_argument("--model", action="append", help="also measure this GGUF file (repeatable)")
    from desktop.cli.bench import add_child_arguments

    add_child_arguments(bench)
    models = sub.add_parser("models", help="list the models Cove knows, import one, or find one on the Hugging Face Hub")
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="list the library (the default)")
    importing = actions.add_parser("import", help="check a GGUF file and add it to the library")
    importing.add_argument("file")
    importing.add_argument("--link", action="store_true", help="remember the file where it is instead of copying it")
    removing = actions.add_parser("rm", help="delete a model from the models folder, or forget a linked one")
    removing.add_argument("name", help="the model's name, file name or path (as `cove models` lists it)")
    removing.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_model_commands(actions)  # search, files (desktop/cli/models.py)
    add_conversation_commands(sub)


def _settings_from_args(base: GenerationSettings, args: argparse.Namespace) -> GenerationSettings:
    mapping = {
        "system": "system_prompt", "max_tokens": "max_tokens", "temperature": "temperature",
        "top_p": "top_p", "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
        "seed": "seed", "ctx": "n_ctx", "threads": "n_threads",
    }
    for arg_name, field_name in mapping.items():
        value = getattr(args, arg_name)
        if value is not None:
            setattr(base, field_name, value)
    return base


def _fail(message: str, code: int = 1) -> int:
    print(f"cove: {message}", file=sys.stderr)
    return code


def cmd_chat(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Stream one answer to ``out`` and store the exchange."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    prompt = sys.stdin.read() if args.prompt == "-" else (args.prompt or "")
    if not prompt.strip():
        return _fail("the prompt is empty: give the question as an argument, e.g. cove chat \"Hello\"", 2)
    settings = _settings_from_args(load_settings(paths.settings_file).generation, args)
    library = ModelLibrary(paths)
    if args.model:
        entry = library.find(args.model)
        model_path = entry.path if entry else Path(args.model)
    else:
        entry = library.default(load_settings(paths.settings_file).last_model)
        if entry is None:
            return _fail("no model found: pass --model FILE.gguf or install the starter (see README)")
        model_path = entry.path
    try:
        check_model_file(model_path)
        store = open_store(paths)
    except (ModelFileError, StoreError) as exc:
        return _fail(str(exc))
    try:
        if args.conversation:
            conversation = store.get_conversation(args.conversation)
            if conversation is None:
                return _fail(f"there is no conversation {args.conversation}")
            history = store.active_path(conversation.id)
            user = store.add_message(conversation.id, "user", prompt,
                                     parent_id=history[-1].id if history else None)
        else:  # the conversation and its question in one transaction
            conversation, user = store.create_conversation_with_message(suggest_title(prompt), str(model_path), prompt)
            history = []
            print(f"cove: conversation {conversation.id}", file=sys.stderr)
        answer = store.add_message(conversation.id, "assistant", "", parent_id=user.id, status=STREAMING)

        def write(content: str, status: str | None, stats: dict | None) -> None:
            store.update_message(answer.id, content, status=status, stats=stats)

        recorder = AnswerRecorder(write)
        try:
            runtime = load_runtime(model_path, paths, n_ctx=settings.n_ctx, n_threads=settings.n_threads)
        except ModelFileError as exc:
            recorder.finish(FAILED, {"error": str(exc)})
            return _fail(str(exc))
        if runtime.template_problem:
            print(f"cove: note: the model's own chat template cannot be used ({runtime.template_problem}); "
                  "using the built-in ChatML template", file=sys.stderr)
        from desktop.core.engine.prompt import messages_for_model
        from desktop.core.engine.runtime import GenerationError

        messages = messages_for_model(history + [user], settings.system_prompt)
        restored = runtime.restore_state(paths.kv_state(conversation.id)) if history else 0
        cancel = threading.Event()
        status = COMPLETE
        try:
            for piece in runtime.stream_chat(messages, settings, cancel):
                out.write(piece)
                out.flush()
                recorder.add(piece)
        except KeyboardInterrupt:
            cancel.set()
            status = STOPPED
        except GenerationError as exc:
            recorder.finish(FAILED, {"error": str(exc)})
            return _fail(str(exc))
        stats = runtime.last_stats
        recorder.finish(status, {**stats.to_dict(), "restored_tokens": restored})
        try:
            runtime.save_state(paths.kv_state(conversation.id))  # a cache for the next turn
        except OSError:
            pass
        runtime.close()
        out.write("\n")
        out.flush()
        if args.stats:
            print(f"cove: {stats.completion_tokens} tokens, {stats.decode_tokens_per_s:.1f} tokens/s, "
                  f"first token after {stats.time_to_first_token_s:.2f} s, context {stats.context_used}/"
                  f"{stats.context_size}, prompt tokens evaluated {stats.prompt_eval_tokens} of "
                  f"{stats.prompt_tokens}", file=sys.stderr)
        return 130 if status == STOPPED else 0
    finally:
        store.close()


def cmd_models_import(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Validate and probe a model file (in a child process), then copy or link it into the library."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    from desktop.core.library.importer import import_model_file

    try:
        entry = import_model_file(Path(args.file), paths, link=args.link)
    except ModelFileError as exc:
        return _fail(str(exc))
    out.write(f"imported {entry.name} ({entry.size / 1e6:.0f} MB) -> {entry.path}\n")
    return 0


def cmd_models_rm(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None,
                  answers: TextIO | None = None) -> int:
    """Delete a library model (models folder), or forget a linked or Hugging Face cache one; asks
    for confirmation on standard error unless ``--yes``."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    answers = answers or sys.stdin  # resolved at call time (tests capture sys.stdin)
    from desktop.core.library.model_library import LibraryError
    from desktop.core.library.disk import DELETE, REFUSE
    from desktop.core.models.metadata import format_size

    library = ModelLibrary(paths)
    entry = library.find(args.name)
    if entry is None:
        return _fail(f"no model named {args.name!r} in the library (`cove models` lists them)")
    plan = library.deletion_plan(entry)
    if plan.action == REFUSE:
        return _fail(plan.message)
    if not args.yes:
        print(f"{plan.message} [y/N] ", end="", file=sys.stderr, flush=True)
        answer = answers.readline()
        if not answers.isatty():
            print(file=sys.stderr)  # the answer was not echoed: end the question's line
        if answer.strip().lower() not in ("y", "yes"):
            return _fail(f"{entry.name} was not {'deleted' if plan.action == DELETE else 'forgotten'}")
    try:
        library.delete(entry)
    except LibraryError as exc:
        return _fail(str(exc))
    if plan.action == DELETE:
        out.write(f"deleted {entry.name} ({format_size(plan.frees)} freed)\n")
    else:
        out.write(f"forgot {entry.name} (the file stays at {entry.path})\n")
    return 0


def cmd_models(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Print the library, one model a line."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    entries = ModelLibrary(paths).entries()
    if not entries:
        out.write("No models yet. Install the starter model (see README) or open a .gguf file.\n")
        return 0
    for entry in entries:
        out.write(f"{entry.name}\t{entry.size / 1e6:.0f} MB\t{entry.source}\t{entry.path}\n")
    return 0


def cmd_hardware(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the CPU, memory and llama.cpp backend report (``--json``: the raw data)."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    import json

    from desktop.core.system.hardware import detect
    from desktop.core.engine.runtime import backend_report

    report = backend_report()
    if args.json:
        out.write(json.dumps({"backend": report, "summary": detect(report).summary()}, indent=1) + "\n")
    else:
        out.write("\n".join(detect(report).summary()) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed command line."""
    if args.command == "hardware":
        return cmd_hardware(args)
    if args.command == "bench" and args.memory_child:  # the benchmark's child process (frozen app)
        from desktop.cli.bench_measure import memory_child

        return memory_child(args.memory_child, args.ctx, bool(args.repack), args.threads or 2, args.fill, args.flash)
    paths = app_paths(args.basedir).ensure()
    if args.command == "bench":
        from desktop.cli.bench import run_bench

        return run_bench(args, paths)
    if args.command == "chat":
        return cmd_chat(args, paths)
    if args.command == "models":
        handled = run_model_command(args, paths)
        if handled is not None:
            return handled
        if args.action == "import":
            return cmd_models_import(args, paths)
        if args.action == "rm":
            return cmd_models_rm(args, paths)
        return cmd_models(args, paths)
    if args.command in CONVERSATION_COMMANDS:
        return CONVERSATION_COMMANDS[args.command](args, paths)
    return _fail(f"unknown command {args.command}", 2)


__all__ = ["add_commands", "run", "__version__"]
