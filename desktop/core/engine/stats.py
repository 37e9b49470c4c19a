"""What one answer cost, and how generation fails (plain data, no llama.cpp): filled by the
in-process runtime and by the client of a remote engine alike, so the store, the window and the
CLI read one shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class GenerationError(RuntimeError):
    """Generation failed; the message is for a person."""


class ContextOverflow(GenerationError):
    """The prompt and the answer asked for do not fit the context window (and dropping earlier
    turns was not allowed): the numbers are kept for the API's error."""

    def __init__(self, prompt_tokens: int, max_tokens: int, n_ctx: int) -> None:
        super().__init__(f"The prompt is {prompt_tokens} tokens and {max_tokens} more were asked for; "
                         f"the context window holds {n_ctx}.")
        self.prompt_tokens, self.max_tokens, self.n_ctx = prompt_tokens, max_tokens, n_ctx


@dataclass
class GenerationStats:
    """What one answer cost, from llama.cpp's counters and the wall clock."""

    prompt_tokens: int = 0          # tokens in the whole rendered prompt
    reused_tokens: int = 0          # of those, already in the KV cache from earlier turns
    prompt_eval_tokens: int = 0     # llama.cpp's n_p_eval: prompt tokens actually evaluated
    completion_tokens: int = 0
    time_to_first_token_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    prompt_tokens_per_s: float = 0.0
    total_s: float = 0.0
    context_used: int = 0
    context_size: int = 0
    dropped_messages: int = 0
    stop_reason: str = ""           # "stop", "length" or "cancelled"
    reasoning_tokens: int = 0       # of the completion tokens, those of the model's thinking
    answer_tokens: int = 0
    thinking_s: float = 0.0
    thinking_closed_by: str = ""    # "budget" or "answer_now" when Cove closed the thinking
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # the calls the answer wrote (ToolCall.to_dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return asdict(self)
