"""Errors of the API in OpenAI's JSON shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request that gets an error response; ``message`` is for the person behind the client."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI's clients read (``openai.APIStatusError.body``)."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400: the request's JSON or one of its fields is wrong."""
    return ApiError(400, message, param=param, code=code)


def unknown_model(model: str, known: list[str]) -> ApiError:
    """404: no model of that id is served."""
    listed = ", ".join(known[:8]) + (" …" if len(known) > 8 else "")
    return ApiError(404, f"The model '{model}' does not exist here. Served models: {listed or 'none'}.",
                    param="model", code="model_not_found")


def context_overflow(prompt_tokens: int, max_tokens: int, n_ctx: int) -> ApiError:
    """400 with the numbers, in the words OpenAI uses for the same case."""
    return ApiError(400, f"This model's maximum context length is {n_ctx} tokens. However, you requested "
                    f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in "
                    "the completion). Please reduce the length of the messages or completion.",
                    param="messages", code="context_length_exceeded")


def queue_full(limit: int) -> ApiError:
    """429: the queue of waiting requests is full."""
    return ApiError(429, f"The server is busy: {limit} requests are already waiting. Retry shortly.",
                    type_="rate_limit_error", code="queue_full")


def server_error(message: str) -> ApiError:
    """500: generation failed on this side."""
    return ApiError(500, message, type_="server_error", code="generation_failed")
