"""The API's response bodies in OpenAI's shapes: chat completions and their streamed chunks,
text completions, embeddings, the model list."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from desktop.core.text.pieces import ANSWER, REASONING, Piece

FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


def finish_reason(stats: dict[str, Any]) -> str:
    """OpenAI's finish_reason for an answer's figures."""
    if stats.get("tool_calls"):
        return "tool_calls"
    return FINISH.get(str(stats.get("stop_reason") or "stop"), "stop")


def usage(stats: dict[str, Any]) -> dict[str, Any]:
    """The ``usage`` object, with the reasoning tokens and Cove's speed figures beside."""
    prompt, completion = int(stats.get("prompt_tokens", 0)), int(stats.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": int(stats.get("reused_tokens", 0))},
            "completion_tokens_details": {"reasoning_tokens": int(stats.get("reasoning_tokens", 0))}}


def timings(stats: dict[str, Any]) -> dict[str, Any]:
    """llama-server's ``timings`` object (clients that show speed read it)."""
    return {"prompt_n": int(stats.get("prompt_eval_tokens", 0)),
            "prompt_per_second": round(float(stats.get("prompt_tokens_per_s", 0.0)), 2),
            "predicted_n": int(stats.get("completion_tokens", 0)),
            "predicted_per_second": round(float(stats.get("decode_tokens_per_s", 0.0)), 2),
            "time_to_first_token_ms": round(1000 * float(stats.get("time_to_first_token_s", 0.0)), 1)}


def api_tool_calls(calls: Sequence[dict[str, Any]], with_index: bool = False) -> list[dict[str, Any]]:
    """Stored calls (``ToolCall.to_dict``) as OpenAI's ``tool_calls``: arguments as a JSON string."""
    shaped = []
    for number, call in enumerate(calls):
        entry: dict[str, Any] = {"id": str(call.get("id") or f"call_{number + 1}"), "type": "function",
                                 "function": {"name": str(call.get("name", "")),
                                              "arguments": json.dumps(call.get("arguments") or {},
                                                                      ensure_ascii=False)}}
        if with_index:
            entry = {"index": number, **entry}
        shaped.append(entry)
    return shaped


class ChatShapes:
    """The ids and constant fields of one chat completion and its chunks."""

    def __init__(self, model: str, kind: str = "chat") -> None:
        self.model, self.kind = model, kind
        self.id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-cove{time.time_ns():x}"
        self.created = int(time.time())

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "system_fingerprint": "cove"}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """One streamed chunk of a chat completion (or of a text completion)."""
        if self.kind == "completion":
            return {**self._base("text_completion"),
                    "choices": [{"index": 0, "text": delta.get("content", ""), "logprobs": None,
                                 "finish_reason": finish}]}
        return {**self._base("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def piece_delta(self, piece: Piece) -> dict[str, Any] | None:
        """The delta of a streamed piece (a tool call's text is not shown: its call comes at the end)."""
        if piece.kind == ANSWER and piece.text:
            return {"content": piece.text}
        if piece.kind == REASONING and piece.text and self.kind == "chat":
            return {"reasoning_content": piece.text}
        return None

    def usage_chunk(self, stats: dict[str, Any]) -> dict[str, Any]:
        """The last chunk when ``stream_options.include_usage``: no choices, the usage."""
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return {**self._base(obj), "choices": [], "usage": usage(stats), "timings": timings(stats)}

    def whole(self, content: str, reasoning: str, stats: dict[str, Any]) -> dict[str, Any]:
        """The non-streamed response."""
        if self.kind == "completion":
            return {**self._base("text_completion"),
                    "choices": [{"index": 0, "text": content, "logprobs": None, "finish_reason": finish_reason(stats)}],
                    "usage": usage(stats), "timings": timings(stats)}
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning:
            message["reasoning_content"] = reasoning
        if stats.get("tool_calls"):
            message["tool_calls"] = api_tool_calls(stats["tool_calls"])
            message["content"] = content or None
        return {**self._base("chat.completion"),
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(stats)}],
                "usage": usage(stats), "timings": timings(stats)}


def model_list(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1/models``: each model's id, with Cove's facts (context, kind, host) beside."""
    return {"object": "list", "data": [{"object": "model", "owned_by": "cove", "created": 0, **m} for m in models]}


def embeddings(model: str, vectors: Sequence[Sequence[float]], tokens: int) -> dict[str, Any]:
    """``POST /v1/embeddings``."""
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
