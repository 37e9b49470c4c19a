"""Run one API job on a loaded runtime, on the model's own thread.

The same function serves ``cove serve`` (the headless host's model) and the window's server
(the generation thread's model): the engine's pieces go to the job as they come, then its
figures, or an :class:`~desktop.core.server.api_errors.ApiError` the HTTP thread sends back.
"""

from __future__ import annotations

import logging
from typing import Any

from desktop.core.engine.answer_loop import ThinkingRequest
from desktop.core.engine.stats import ContextOverflow, GenerationError
from desktop.core.server.api_errors import ApiError, context_overflow, server_error
from desktop.core.server.api_requests import ApiRequest
from desktop.core.server.jobs import Job
from desktop.core.server.model_ids import served_id

logger = logging.getLogger(__name__)


def thinking_request(runtime: Any, request: ApiRequest) -> ThinkingRequest:
    """What the request asks of a thinking model (its default where it does not say)."""
    think = runtime.thinking.default_on if request.think is None else request.think
    return ThinkingRequest(think=think, effort=request.effort)


def tool_request(request: ApiRequest) -> Any:
    """The engine's tool request for the API request's ``tools`` (None without tools)."""
    if not request.tools:
        return None
    from desktop.core.engine.tool_use import ToolRequest  # lazy: llama_cpp, imported by the load already

    return ToolRequest(list(request.tools), request.required_tool, True)


def run_job(runtime: Any, job: Job, model_id: str) -> None:
    """Answer ``job`` with ``runtime`` (a Runtime or a RemoteRuntime), ending it either way."""
    request: ApiRequest = job.request
    try:
        if request.kind == "completion":
            stream = runtime.stream_completion(request.prompt, request.settings, job.cancel, request.stop)
        else:
            stream = runtime.stream_chat(request.messages, request.settings, job.cancel,
                                         thinking_request(runtime, request), tool_request(request),
                                         extra_stop=request.stop, drop_old=False)
        for piece in stream:
            job.piece(piece)
    except ContextOverflow as exc:
        job.fail(context_overflow(exc.prompt_tokens, exc.max_tokens, exc.n_ctx))
        return
    except GenerationError as exc:
        job.fail(server_error(str(exc)))
        return
    stats = runtime.last_stats.to_dict()
    stats["model"] = model_id
    job.finish(stats)


def embed_job(embedder: Any, job: Job, model_id: str) -> None:
    """Answer an embeddings job: one vector per input text."""
    _kind, _model, texts = job.request
    try:
        vectors, tokens = embedder.embed(texts)
    except GenerationError as exc:
        job.fail(server_error(str(exc)))
        return
    job.finish({"model": model_id, "vectors": vectors, "prompt_tokens": tokens})


def serve_job(runtime: Any, job: Job) -> None:
    """Answer ``job`` with the window's loaded model (``runtime``, None when nothing is loaded)."""
    if isinstance(job.request, tuple):
        job.fail(ApiError(400, "The window's server answers chat and text completions; for embeddings use "
                          "cove serve.", param="model"))
    elif runtime is None or not hasattr(runtime, "stream_completion"):
        job.fail(ApiError(503, "The window has no local model loaded: pick one in Cove's model picker.",
                          type_="server_error", code="model_not_loaded"))
    else:
        run_job(runtime, job, served_id(runtime.path))
