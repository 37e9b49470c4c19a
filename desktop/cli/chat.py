"""``cove chat [--model FILE] "prompt"``: stream one answer to standard output and store the exchange.

A new conversation is said on standard error (``cove: conversation N``); ``--conversation N``
continues one, restoring its context cache from disk when it is there. Ctrl+C stops the answer
(kept as stopped, exit status 130). A thinking model's reasoning goes to standard error (dimmed on
a terminal) unless ``--hide-thinking``; ``--json`` prints one object with the reasoning and the
answer apart instead of streaming. ``--tools`` lets the model call MCP tools
(:mod:`desktop.cli.chat_tools`): each round's calls run, their results are stored as ``tool``
messages, and the model goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from desktop.cli.chat_tools import CliTools, add_tool_arguments
from desktop.cli.conversations import open_store
from desktop.cli.output import fail, note
from desktop.core.conversations.answer_recorder import AnswerRecorder
from desktop.core.conversations.records import COMPLETE, FAILED, STOPPED, STREAMING, Message, StoreError
from desktop.core.conversations.store import Store, suggest_title
from desktop.core.engine.answer_loop import ThinkingRequest
from desktop.core.engine.loader import ModelFileError, check_model_file, load_runtime
from desktop.core.engine.output_parser import REASONING
from desktop.core.engine.prompt import messages_for_model
from desktop.core.engine.stats import GenerationError
from desktop.core.engine.thinking_format import EFFORTS
from desktop.core.library.model_library import ModelLibrary
from desktop.core.remote.model_keys import parse_remote_key, remote_key
from desktop.core.remote.remote_models import open_remote
from desktop.core.system.paths import AppPaths
from desktop.core.system.secrets import SecretStore
from desktop.core.system.settings import GenerationSettings, load_settings
from desktop.core.tools.specs import TOOL_CALL, ToolCall
from desktop.core.tools.tool_rounds import CORRECT, DONE, RUN, ToolRounds, correction_result

# argument -> GenerationSettings field
_SETTINGS = {"system": "system_prompt", "max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
             "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty", "seed": "seed", "ctx": "n_ctx",
             "threads": "n_threads"}


def add_chat_arguments(chat: argparse.ArgumentParser) -> None:
    """The arguments of ``cove chat``."""
    chat.add_argument("prompt", nargs="?", default=None, help="the question ('-' reads standard input)")
    chat.add_argument("--model", help="a GGUF file or a library model name (default: the last used or the starter); "
                      "with --engine, one of that engine's models")
    chat.add_argument("--engine", default="", help="answer with a model of this remote engine (cove engines)")
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
    think = chat.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_const", const=True, default=None,
                       help="ask a thinking model to think first (its default unless it is off by default)")
    think.add_argument("--no-think", dest="think", action="store_const", const=False,
                       help="ask a thinking model to answer without thinking, where its template allows it")
    chat.add_argument("--reasoning-effort", choices=EFFORTS, default=None,
                      help="how hard a model with effort levels (gpt-oss) thinks")
    chat.add_argument("--thinking-budget", type=int, default=0, metavar="N",
                      help="close the thinking after N tokens and go on to the answer (0: no limit)")
    chat.add_argument("--hide-thinking", action="store_true", help="do not print the reasoning")
    chat.add_argument("--json", action="store_true",
                      help="print one JSON object (conversation, reasoning, answer, tool calls, stats) when done")
    add_tool_arguments(chat)


def settings_from_args(base: GenerationSettings, args: argparse.Namespace) -> GenerationSettings:
    """``base`` with the options given on the command line."""
    for arg_name, field_name in _SETTINGS.items():
        value = getattr(args, arg_name)
        if value is not None:
            setattr(base, field_name, value)
    return base


@dataclass
class _Turn:
    """One question and its answer being written."""

    conversation_id: int
    history: list[Message]      # the conversation before the question
    question: Message
    recorder: AnswerRecorder
    store: Store
    answer: Message             # the answer being written (the current round's)


def cmd_chat(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:
    """Stream one answer to ``out`` and store the exchange."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    prompt = sys.stdin.read() if args.prompt == "-" else (args.prompt or "")
    if not prompt.strip():
        return fail("the prompt is empty: give the question as an argument, e.g. cove chat \"Hello\"", code=2)
    settings = settings_from_args(load_settings(paths.settings_file).generation, args)
    if args.engine and not args.model:
        return fail("--engine needs --model: one of the models `cove engines` lists for it", code=2)
    model_path = Path(remote_key(args.engine, args.model)) if args.engine else _model_path(args.model, paths)
    if model_path is None:
        return fail("no model found: pass --model FILE.gguf or install the starter (see README)")
    try:
        if not args.engine:
            check_model_file(model_path)
        store = open_store(paths)
    except (ModelFileError, StoreError) as exc:
        return fail(str(exc))
    try:
        turn = _begin(store, args.conversation, prompt, model_path)
        if turn is None:
            return fail(f"there is no conversation {args.conversation}")
        try:
            runtime = _open_runtime(model_path, paths, settings)
        except (ModelFileError, GenerationError) as exc:
            turn.recorder.finish(FAILED, {"error": str(exc)})
            return fail(str(exc))
        try:
            return _answer(runtime, turn, settings, paths, out, args)
        finally:
            runtime.close()
    finally:
        store.close()


def _open_runtime(model_path: Path, paths: AppPaths, settings: GenerationSettings) -> Any:
    """The in-process runtime for a GGUF file, or a remote engine's model for its key."""
    if parse_remote_key(str(model_path)):
        return open_remote(paths, SecretStore(), str(model_path))
    return load_runtime(model_path, paths, n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def _model_path(model: str | None, paths: AppPaths) -> Path | None:
    """The file to load: ``--model`` (a library name or a path), else the last used or the starter."""
    library = ModelLibrary(paths)
    if model:
        entry = library.find(model)
        return entry.path if entry else Path(model)
    entry = library.default(load_settings(paths.settings_file).last_model)
    return entry.path if entry else None


def _begin(store: Store, conversation_id: int, prompt: str, model_path: Path) -> _Turn | None:
    """Store the question (in conversation ``conversation_id``, or a new one) and an empty answer
    being streamed; None when there is no such conversation."""
    if conversation_id:
        conversation = store.get_conversation(conversation_id)
        if conversation is None:
            return None
        history = store.active_path(conversation.id)
        user = store.add_message(conversation.id, "user", prompt, parent_id=history[-1].id if history else None)
    else:  # the conversation and its question in one transaction
        conversation, user = store.create_conversation_with_message(suggest_title(prompt), str(model_path), prompt)
        history = []
        note(f"conversation {conversation.id}")
    answer = store.add_message(conversation.id, "assistant", "", parent_id=user.id, status=STREAMING)
    return _Turn(conversation.id, history, user, _recorder(store, answer.id), store, answer)


def _recorder(store: Store, message_id: int) -> AnswerRecorder:
    """Records an answer's text into message ``message_id`` (its tool calls with the final figures)."""
    def write(content: str, reasoning: str, status: str | None, stats: dict | None) -> None:
        figures = {k: v for k, v in stats.items() if k != "tool_calls"} if stats is not None else None
        store.update_message(message_id, content, status=status, stats=figures, reasoning=reasoning,
                             thinking_s=(stats or {}).get("thinking_s"),
                             tool_calls=(stats or {}).get("tool_calls") or None)
    return AnswerRecorder(write)


def _answer(runtime: Any, turn: _Turn, settings: GenerationSettings, paths: AppPaths, out: TextIO,
            args: argparse.Namespace) -> int:
    """Answer (in as many tool rounds as it takes) while recording; 0, 130 when stopped, 1 when
    generation failed or a tool server could not start."""
    if runtime.template_problem:
        note(f"note: the model's own chat template cannot be used ({runtime.template_problem}); "
             "using the built-in ChatML template")
    tools = CliTools(paths, allow_all=args.allow_tools) if args.tools else None
    try:
        problem = tools.start([n.strip() for n in args.tools.split(",") if n.strip()]) if tools else ""
        if problem:
            turn.recorder.finish(FAILED, {"error": problem})
            return fail(problem)
        return _rounds(runtime, turn, settings, paths, out, args, tools)
    finally:
        if tools is not None:
            tools.close()


def _rounds(runtime: Any, turn: _Turn, settings: GenerationSettings, paths: AppPaths, out: TextIO,
            args: argparse.Namespace, tools: CliTools | None) -> int:
    # lazy: these import llama_cpp; load_runtime has imported it by now
    from desktop.core.engine.tool_use import ToolRequest

    rounds = ToolRounds(require=args.require_tool)
    history = turn.history + [turn.question]
    restored = runtime.restore_state(paths.kv_state(turn.conversation_id)) if turn.history else 0
    texts, done_calls = [], []
    while True:
        offer = ToolRequest(tools.specs, rounds.required_now, rounds.takes_calls) if tools else None
        try:
            status = _stream_round(runtime, turn, messages_for_model(history, settings.system_prompt), settings,
                                   offer, out, args)
        except GenerationError as exc:
            turn.recorder.finish(FAILED, {"error": str(exc)})
            return fail(str(exc))
        stats = runtime.last_stats
        turn.recorder.finish(status, {**stats.to_dict(), "restored_tokens": restored})
        texts.append(turn.recorder.text.strip())
        calls = [ToolCall.from_dict(c) for c in stats.tool_calls] if status == COMPLETE and tools else []
        step = rounds.next_step(calls)
        if step not in (DONE, RUN, CORRECT):
            note(rounds.problem(step, calls))
        if step not in (RUN, CORRECT):
            break
        history = history + [turn.store.get_message(turn.answer.id) or turn.answer]
        parent = turn.answer.id
        for call in calls:
            result = correction_result(call) if call.error else tools.run_call(call)  # type: ignore[union-attr]
            message = turn.store.add_message(turn.conversation_id, "tool", result.content, parent_id=parent,
                                             tool=result.to_dict())
            history.append(message)
            parent = message.id
            done_calls.append({**call.to_dict(), "result": result.content, "status": result.status,
                               "duration_s": round(result.duration_s, 4), "server": result.server})
            if not args.json:
                shown = " ".join(result.content.split())[:200]
                note(f"tool {call.name} {call.arguments_json()} -> {result.status}: {shown}")
        turn.answer = turn.store.add_message(turn.conversation_id, "assistant", "", parent_id=parent, status=STREAMING)
        turn.recorder = _recorder(turn.store, turn.answer.id)
    return _report(runtime, turn, status, texts, done_calls, rounds.rounds, out, args, paths)


def _stream_round(runtime: Any, turn: _Turn, messages: list[dict[str, Any]], settings: GenerationSettings,
                  offer: Any, out: TextIO, args: argparse.Namespace) -> str:
    """One round of generation streamed to ``out`` and recorded; its status."""
    request = _thinking_request(runtime, args)
    cancel = threading.Event()
    thoughts = _ThoughtsOut(sys.stderr, shown=not args.hide_thinking and not args.json)
    try:
        for piece in runtime.stream_chat(messages, settings, cancel, request, offer):
            if piece.kind == TOOL_CALL:
                continue
            turn.recorder.add(piece.text, piece.kind)
            if piece.kind == REASONING:
                thoughts.write(piece.text)
            elif not args.json:
                thoughts.end()
                out.write(piece.text)
                out.flush()
    except KeyboardInterrupt:
        cancel.set()
        return STOPPED
    finally:
        thoughts.end()
    return COMPLETE


def _report(runtime: Any, turn: _Turn, status: str, texts: list[str], calls: list[dict[str, Any]], rounds: int,
            out: TextIO, args: argparse.Namespace, paths: AppPaths) -> int:
    """Save the context cache, write the result (JSON or the closing newline) and the figures."""
    stats = runtime.last_stats
    with contextlib.suppress(OSError):  # a cache for the next turn: losing it costs a prompt evaluation
        runtime.save_state(paths.kv_state(turn.conversation_id))
    if args.json:
        out.write(json.dumps({"conversation": turn.conversation_id, "reasoning": turn.recorder.reasoning.strip(),
                              "answer": "\n\n".join(t for t in texts if t), "status": status, "tool_calls": calls,
                              "rounds": rounds + 1, "stats": stats.to_dict()}, ensure_ascii=False) + "\n")
    else:
        out.write("\n")
    out.flush()
    if args.stats:
        note(f"{stats.completion_tokens} tokens ({stats.reasoning_tokens} thinking, {stats.answer_tokens} answer), "
             f"{stats.decode_tokens_per_s:.1f} tokens/s, first token after {stats.time_to_first_token_s:.2f} s, "
             f"context {stats.context_used}/{stats.context_size}, prompt tokens evaluated "
             f"{stats.prompt_eval_tokens} of {stats.prompt_tokens}")
    return 130 if status == STOPPED else 0


def _thinking_request(runtime: Any, args: argparse.Namespace) -> ThinkingRequest:
    """What ``--think``/``--no-think``/``--reasoning-effort``/``--thinking-budget`` ask of this model."""
    fmt = runtime.thinking
    think = fmt.default_on if args.think is None else args.think
    if args.think is False and fmt.thinks and not fmt.can_switch_off:
        note("note: this model always thinks; its template has no switch to turn thinking off")
    return ThinkingRequest(think=think, effort=args.reasoning_effort or "", budget=max(0, args.thinking_budget))


class _ThoughtsOut:
    """The reasoning on standard error: dimmed on a terminal, a blank line before the answer."""

    def __init__(self, stream: TextIO, shown: bool) -> None:
        self._stream, self._shown, self._open = stream, shown, False
        self._dim = shown and stream.isatty()

    def write(self, text: str) -> None:
        if not self._shown:
            return
        if not self._open:
            self._stream.write("\x1b[2m" if self._dim else "")
            self._open = True
        self._stream.write(text)
        self._stream.flush()

    def end(self) -> None:
        if self._open:
            self._stream.write("\x1b[0m\n\n" if self._dim else "\n\n")
            self._stream.flush()
            self._open = False
