"""A model on a remote engine, behind the same interface as the in-process runtime
(:class:`desktop.core.engine.runtime.Runtime`): the window's generation thread and ``cove chat``
use it unchanged. The answer streams over SSE; reasoning is read from ``reasoning_content`` or
``reasoning``, tool calls are assembled from their deltas, usage and llama-server's ``timings``
are read when the engine sends them. The KV cache is the engine's: nothing is saved here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from desktop.core.engine.stats import GenerationStats
from desktop.core.engine.thinking_format import ThinkingFormat
from desktop.core.remote.engine_config import EngineConfig, host_port
from desktop.core.remote.openai_client import OpenAIClient
from desktop.core.system.settings import GenerationSettings
from desktop.core.text.pieces import ANSWER, REASONING, TOOL_CALL, Piece
from desktop.core.tools.specs import ANY_TOOL, ToolCall


class RemoteRuntime:
    """One model of one engine. ``n_ctx`` is the engine's context when its model list says it."""

    def __init__(self, config: EngineConfig, model: str, api_key: str | None = None, n_ctx: int = 0) -> None:
        self.config, self.model = config, model
        self.client = OpenAIClient(config, api_key)
        host, port = host_port(config)
        self.host = f"{host}:{port}"
        self.path = Path(f"{config.name}/{model}")
        self.n_ctx = n_ctx
        self.template_problem = ""
        self.thinking = ThinkingFormat()
        self.cached_tokens = 0
        self.last_stats = GenerationStats()

    # -- what the callers of a Runtime read ---------------------------------------------------
    def restore_state(self, _path: Path) -> int:
        """Nothing to restore: the engine keeps its own cache."""
        return 0

    def save_state(self, _path: Path) -> None:
        """Nothing to save (the engine's cache)."""

    def count_tokens(self, text: str) -> int:
        """An estimate (the engine's tokenizer is not here): four characters a token."""
        return max(1, len(text) // 4)

    def close(self) -> None:
        """Nothing is held between answers."""

    # -- generation ---------------------------------------------------------------------------
    def request_body(self, messages: Sequence[dict[str, Any]], settings: GenerationSettings, thinking: Any,
                     tools: Any) -> dict[str, Any]:
        """The chat completion request for these messages and settings."""
        body: dict[str, Any] = {"model": self.model, "messages": [_wire_message(m) for m in messages],
                                "max_tokens": settings.max_tokens, "temperature": settings.temperature,
                                "top_p": settings.top_p, "top_k": settings.top_k, "min_p": settings.min_p,
                                "repeat_penalty": settings.repeat_penalty,
                                "stream_options": {"include_usage": True}}
        if settings.seed >= 0:
            body["seed"] = settings.seed
        if thinking is not None and settings.think in ("on", "off"):
            body["chat_template_kwargs"] = {"enable_thinking": bool(thinking.think)}
        if thinking is not None and thinking.effort:
            body["reasoning_effort"] = thinking.effort
        if tools is not None and tools.specs:
            body["tools"] = [spec.for_template() for spec in tools.specs]
            if tools.required == ANY_TOOL:
                body["tool_choice"] = "required"
            elif tools.required:
                body["tool_choice"] = {"type": "function", "function": {"name": tools.required}}
        return body

    def stream_chat(self, messages: Sequence[dict[str, Any]], settings: GenerationSettings,
                    cancel: threading.Event | None = None, thinking: Any = None, tools: Any = None,
                    **_engine_only: Any) -> Iterator[Piece]:
        """Stream the answer in pieces; ``last_stats`` is filled when it ends (cancelled too). A
        failure raises :class:`~desktop.core.remote.openai_client.RemoteError` after the pieces
        already streamed, which stand."""
        cancel = cancel or threading.Event()
        stats = GenerationStats(context_size=self.n_ctx)
        self.last_stats = stats
        started, first_at, last_at = time.perf_counter(), 0.0, 0.0
        calls: dict[int, dict[str, Any]] = {}
        finish, pieces = "", 0
        try:
            for chunk in self.client.stream_chat(self.request_body(messages, settings, thinking, tools), cancel):
                _read_usage(chunk, stats)
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    finish = choice.get("finish_reason") or finish
                    for piece in _delta_pieces(delta, calls):
                        now = time.perf_counter()
                        first_at, last_at = first_at or now, now
                        pieces += 1
                        if piece.kind == REASONING:
                            stats.reasoning_tokens += 1
                        else:
                            stats.answer_tokens += 1
                        yield piece
        finally:
            self._finish(stats, started, first_at, last_at, pieces, calls,
                         "cancelled" if cancel.is_set() else ("length" if finish == "length" else "stop"))
        for call in self._calls(calls):
            yield Piece(TOOL_CALL, json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False))

    def _calls(self, calls: dict[int, dict[str, Any]]) -> list[ToolCall]:
        return [ToolCall.from_dict(c) for c in self.last_stats.tool_calls]

    def _finish(self, stats: GenerationStats, started: float, first_at: float, last_at: float, pieces: int,
                calls: dict[int, dict[str, Any]], reason: str) -> None:
        stats.total_s = time.perf_counter() - started
        stats.time_to_first_token_s = first_at - started if first_at else 0.0
        if not stats.completion_tokens:
            stats.completion_tokens = pieces
        if not stats.decode_tokens_per_s and last_at > first_at and stats.completion_tokens > 1:
            stats.decode_tokens_per_s = (stats.completion_tokens - 1) / (last_at - first_at)
        stats.context_used = stats.prompt_tokens + stats.completion_tokens
        stats.stop_reason = reason
        stats.tool_calls = [_call_dict(number, call) for number, call in sorted(calls.items())]


def _wire_message(message: dict[str, Any]) -> dict[str, Any]:
    """A template-shaped message as OpenAI's API takes it (tool-call arguments as JSON text)."""
    wired = {k: v for k, v in message.items() if k != "reasoning_content"}
    if message.get("tool_calls"):
        wired["tool_calls"] = [{**c, "function": {"name": c["function"]["name"],
                                                  "arguments": json.dumps(c["function"].get("arguments") or {})}}
                               for c in message["tool_calls"]]
    return wired


def _delta_pieces(delta: dict[str, Any], calls: dict[int, dict[str, Any]]) -> list[Piece]:
    """The pieces of one delta; tool-call fragments are gathered into ``calls`` by index."""
    pieces = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        pieces.append(Piece(REASONING, reasoning))
    if isinstance(delta.get("content"), str) and delta["content"]:
        pieces.append(Piece(ANSWER, delta["content"]))
    for fragment in delta.get("tool_calls") or []:
        entry = calls.setdefault(int(fragment.get("index", len(calls))), {"id": "", "name": "", "arguments": ""})
        entry["id"] = fragment.get("id") or entry["id"]
        function = fragment.get("function") or {}
        entry["name"] += function.get("name") or ""
        entry["arguments"] += function.get("arguments") or ""
    return pieces


def _call_dict(number: int, call: dict[str, Any]) -> dict[str, Any]:
    """An assembled call as ``ToolCall.to_dict`` (arguments that do not parse kept as the error)."""
    try:
        arguments = json.loads(call["arguments"]) if call["arguments"].strip() else {}
        error = "" if isinstance(arguments, dict) else "the arguments are not a JSON object"
    except json.JSONDecodeError as exc:
        arguments, error = {}, f"the arguments are not JSON ({exc.msg})"
    return ToolCall(call["name"], arguments if isinstance(arguments, dict) else {}, call["id"] or f"call_{number + 1}",
                    error, call["arguments"] if error else "").to_dict()


def _read_usage(chunk: dict[str, Any], stats: GenerationStats) -> None:
    """Token counts from ``usage``, speed from llama-server's ``timings``, when the chunk has them."""
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        stats.prompt_tokens = int(usage.get("prompt_tokens") or stats.prompt_tokens)
        stats.completion_tokens = int(usage.get("completion_tokens") or stats.completion_tokens)
        details = usage.get("completion_tokens_details") or {}
        if isinstance(details, dict) and details.get("reasoning_tokens"):
            stats.reasoning_tokens = int(details["reasoning_tokens"])
    timings = chunk.get("timings")
    if isinstance(timings, dict):
        stats.decode_tokens_per_s = float(timings.get("predicted_per_second") or 0.0)
        stats.prompt_tokens_per_s = float(timings.get("prompt_per_second") or 0.0)
        stats.prompt_eval_tokens = int(timings.get("prompt_n") or 0)
