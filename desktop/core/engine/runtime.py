"""The in-process llama.cpp runtime (with :mod:`~desktop.core.engine.backends` and
:mod:`~desktop.core.engine.llama_params`, the only modules that import ``llama_cpp``).

A :class:`Runtime` owns one ``Llama`` and must be used from one thread. It renders the chat
template found in the GGUF's metadata (in Cove's guarded sandbox, :mod:`desktop.core.engine.chat_template`),
streams the answer piece by piece, stops within one token when asked (and during prompt evaluation
through llama.cpp's abort callback), and reuses the KV cache of the earlier turns of a
conversation, so a new turn evaluates only its new tokens. Figures come from llama.cpp's own
performance counters.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as llama_lib

from desktop.core.engine.answer_loop import AnswerLoop, ThinkingRequest
from desktop.core.engine.chat_template import (
    CHATML_TEMPLATE,
    ChatTemplate,
    TemplateError,
    TemplateRefusal,
    merge_system_into_first_user,
)
from desktop.core.engine.kv_state import KVStateMixin
from desktop.core.engine.llama_params import model_params
from desktop.core.engine.output_parser import Piece
from desktop.core.engine.stats import ContextOverflow, GenerationError, GenerationStats
from desktop.core.engine.thinking import detect_format
from desktop.core.engine.thinking_format import ThinkingFormat, apply_flag, thinking_variables, with_override
from desktop.core.engine.tool_use import (
    FALLBACK_FORMAT,
    ToolRequest,
    any_call_grammar,
    call_grammar,
    with_fallback_tools,
)
from desktop.core.models.gguf import GGUFInfo, read_gguf
from desktop.core.system.settings import DEFAULT_CONTEXT_CAP, GenerationSettings
from desktop.core.tools.call_formats import ToolCallFormat, detect_call_format
from desktop.core.tools.call_scanner import CallScanner
from desktop.core.tools.specs import ANY_TOOL

logger = logging.getLogger(__name__)

__all__ = ["CACHE_TYPES", "SIMULATE_REPACK_CRASH_ENV", "GenerationError", "GenerationStats", "LoadConfig",
           "ModelLoadError", "Runtime", "default_context"]

# Set (to anything) to make every load with weight repacking abort the process, as llama.cpp's
# repacking does on Xeons with AMX: the probe then falls back, and a test that builds a repacking
# runtime without the probe's verdict takes the whole run down, on every machine.
SIMULATE_REPACK_CRASH_ENV = "COVE_PROBE_SIMULATE_REPACK_CRASH"
CACHE_TYPES = {"f16": llama_lib.GGML_TYPE_F16, "q8_0": llama_lib.GGML_TYPE_Q8_0, "q4_0": llama_lib.GGML_TYPE_Q4_0}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message is for a person."""


@dataclass(frozen=True)
class LoadConfig:
    """How a model is loaded. ``use_extra_bufts`` enables llama.cpp's weight repacking, which is
    fast but crashes on some CPUs (Xeons with AMX): it is off unless the quarantine probe's verdict
    for this file, build and CPU turns it on (:func:`desktop.core.engine.loader.prepare_model`)."""

    n_ctx: int = 0
    n_threads: int = 0
    n_batch: int = 512
    use_extra_bufts: bool = False
    n_gpu_layers: int = 0
    builtin_template: bool = False  # True: ignore the model's chat template, use ChatML
    template_note: str = ""         # why the model's own template is not used
    flash_attn: bool = False
    cache_type: str = "f16"         # KV cache: "f16", "q8_0" or "q4_0" (quantized needs flash attention)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def default_context(info: GGUFInfo) -> int:
    """The smaller of the model's trained context and 4096 tokens."""
    trained = info.context_length or DEFAULT_CONTEXT_CAP
    return max(256, min(trained, DEFAULT_CONTEXT_CAP))


class Runtime(KVStateMixin):
    """One loaded model. Create, use and close it on the same thread."""

    def __init__(self, path: str | Path, config: LoadConfig | None = None, info: GGUFInfo | None = None) -> None:
        self.path = Path(path)
        self.info = info or read_gguf(self.path)
        config = config or LoadConfig()
        n_ctx = config.n_ctx or default_context(self.info)
        n_threads = config.n_threads or GenerationSettings().effective_threads()
        cache_type = config.cache_type if config.cache_type in CACHE_TYPES else "f16"
        flash_attn = config.flash_attn or cache_type != "f16"  # llama.cpp needs it for a quantized V cache
        self.config = dataclasses.replace(config, n_ctx=n_ctx, n_threads=n_threads, flash_attn=flash_attn,
                                          cache_type=cache_type)
        if config.use_extra_bufts and os.environ.get(SIMULATE_REPACK_CRASH_ENV):
            os.abort()  # what llama.cpp's repacking does on an AMX Xeon, on any machine (tests)
        try:
            with model_params(use_extra_bufts=config.use_extra_bufts):
                self._llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    n_batch=min(config.n_batch, n_ctx),
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    n_gpu_layers=config.n_gpu_layers,
                    flash_attn=flash_attn,
                    type_k=CACHE_TYPES[cache_type],
                    type_v=CACHE_TYPES[cache_type],
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {self.path.name}: {exc}") from exc
        self.template_problem = config.template_note if config.builtin_template else ""
        self.thinking = ThinkingFormat()
        self._template = self._make_template(builtin=config.builtin_template)
        self._cancel: threading.Event | None = None
        self._abort_cb = llama_lib.ggml_abort_callback(self._should_abort)
        self.last_stats = GenerationStats()

    # -- facts ----------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        """The context window in tokens."""
        return int(self._llm.n_ctx())

    @property
    def cached_tokens(self) -> int:
        """Tokens currently held in the KV cache."""
        return int(self._llm.n_tokens)

    @property
    def has_own_template(self) -> bool:
        """True when the model's own chat template is in use (else Cove's built-in ChatML)."""
        return self._template.source != CHATML_TEMPLATE

    def close(self) -> None:
        """Free the model and its context."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()

    # -- prompt ---------------------------------------------------------------------------
    def _make_template(self, builtin: bool) -> ChatTemplate:
        llm = self._llm
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        model = llm._model  # noqa: SLF001 - token text lookup is only exposed there
        eos = model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = model.token_get_text(bos_id) if bos_id != -1 else ""
        self._stop_ids = {eos_id} if eos_id != -1 else set()
        source = llm.metadata.get("tokenizer.chat_template") or ""
        self.thinking = ThinkingFormat()
        self.tool_format = detect_call_format("")
        if builtin or not source:
            return ChatTemplate(CHATML_TEMPLATE, eos or "<|im_end|>", bos)
        try:
            template = ChatTemplate(source, eos, bos)
        except TemplateError as exc:
            self.template_problem = str(exc)
            return ChatTemplate(CHATML_TEMPLATE, eos or "<|im_end|>", bos)
        self.thinking = detect_format(source, eos, bos)
        self.tool_format = detect_call_format(source)
        return template

    def set_thinking_markers(self, open_marker: str, close_marker: str) -> None:
        """Markers a person set for a model whose template does not say how it thinks."""
        self.thinking = with_override(self.thinking, open_marker, close_marker)

    def _is_control(self, marker: str) -> bool:
        """True when ``marker`` is one control token (harmony's channels, Llama's ``<|python_tag|>``,
        Mistral's ``[TOOL_CALLS]``), which plain decoding drops."""
        if not marker:
            return False
        ids = self._llm.tokenize(marker.encode("utf-8"), add_bos=False, special=True)
        attr = self._llm._model.token_get_attr(ids[0]) if len(ids) == 1 else 0  # noqa: SLF001
        return bool(attr & llama_lib.LLAMA_TOKEN_ATTR_CONTROL)

    def _end_of_message_ids(self) -> set[int]:
        """Llama's ``<|eom_id|>`` (the end of a message that called a tool) where it is one token."""
        ids = self._llm.tokenize(b"<|eom_id|>", add_bos=False, special=True)
        return set(ids) if len(ids) == 1 and self._is_control("<|eom_id|>") else set()

    def _decode_special(self, tool_parts: dict[str, Any]) -> bool:
        """Whether the answer's tokens are decoded with their control tokens as text: when the
        thinking or the tool-call markers are control tokens, the parsers must see them."""
        call_format = tool_parts.get("tool_format")
        return self._is_control(self.thinking.open) or (call_format is not None and self._is_control(call_format.open))

    def use_builtin_template(self, reason: str) -> None:
        """Switch to Cove's ChatML template (the model's own failed)."""
        self.template_problem = reason
        self._template = self._make_template(builtin=True)

    def render(self, messages: Sequence[dict[str, Any]],
               variables: dict[str, Any] | None = None) -> tuple[str, list[int], list[str]]:
        """Render the chat template: the prompt text, its tokens and the stop strings.

        If the model's own template fails, runs too long or grows too large, Cove switches to
        its built-in template for this model and says so in the raised error.
        """
        try:
            try:
                rendered = self._template.render(messages, variables=variables)
            except TemplateRefusal:
                if not any(m["role"] == "system" for m in messages):
                    raise
                rendered = self._template.render(merge_system_into_first_user(messages), variables=variables)
        except TemplateError as exc:
            if not self.has_own_template:
                raise GenerationError(f"The chat template failed: {exc}") from exc
            self.use_builtin_template(str(exc))
            raise GenerationError(
                f"This model's chat template could not be used ({exc}). Cove switched to its built-in "
                "ChatML template for this model; press Regenerate to try again.") from exc
        tokens = self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=False, special=True)
        return rendered.prompt, tokens, rendered.stop

    def fit_messages(self, messages: Sequence[dict[str, str]], reserve: int) -> tuple[list[dict[str, str]], int]:
        """Drop the oldest turns (never a system message, never the last) until the prompt
        leaves ``reserve`` tokens free. Returns the messages kept and how many were dropped."""
        kept, dropped, _tokens, _stop = self._fit(messages, reserve)
        return kept, dropped

    def _fit(self, messages: Sequence[dict[str, Any]], reserve: int,
             variables: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], int, list[int], list[str]]:
        """:meth:`fit_messages`, also returning the kept prompt's tokens and stop strings (so a
        slow template is rendered once per answer, not twice)."""
        kept = list(messages)
        dropped = 0
        limit = max(16, self.n_ctx - reserve)
        while True:
            _, tokens, stop = self.render(kept, variables)
            if len(tokens) <= limit:
                return kept, dropped, tokens, stop
            droppable = [i for i, m in enumerate(kept[:-1]) if m["role"] != "system"]
            if not droppable:
                raise GenerationError(
                    f"The message is too long for the context window: {len(tokens)} tokens, "
                    f"{self.n_ctx} fit. Shorten it or raise the context length."
                )
            del kept[droppable[0]]
            dropped += 1

    # -- generation ----------------------------------------------------------------------
    def _should_abort(self, _data: Any) -> bool:
        cancel = self._cancel
        return bool(cancel is not None and cancel.is_set())

    def _set_abort(self, enabled: bool) -> None:
        ctx = self._llm._ctx.ctx  # noqa: SLF001 - the abort callback needs the raw context
        callback = self._abort_cb if enabled else ctypes.cast(None, llama_lib.ggml_abort_callback)
        llama_lib.llama_set_abort_callback(ctx, callback, None)

    def prompt_messages(self, messages: Sequence[dict[str, Any]], request: ThinkingRequest) -> list[dict[str, Any]]:
        """``messages`` as this model's template expects them: an earlier answer's reasoning
        (``reasoning_content``) only for templates that read it, and a ``/no_think`` flag where
        that is how thinking is switched."""
        keep = self.thinking.reads_reasoning
        shaped = [m if keep or "reasoning_content" not in m
                  else {k: v for k, v in m.items() if k != "reasoning_content"}
                  for m in messages]
        return apply_flag(self.thinking, shaped, request.think) if self.thinking.thinks else shaped

    def stream_chat(
        self,
        messages: Sequence[dict[str, Any]],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
        thinking: ThinkingRequest | None = None,
        tools: ToolRequest | None = None,
        extra_stop: Sequence[str] = (),
        drop_old: bool = True,
    ) -> Iterator[Piece]:
        """Yield the answer to ``messages`` in pieces of reasoning, answer and tool calls;
        ``last_stats`` is filled when done (its ``tool_calls`` lists the calls read).
        ``thinking`` switches, sets and bounds a thinking model's reasoning; ``tools`` offers
        tools (a required one constrains sampling to its call, with thinking off where it can be).

        Setting ``cancel`` ends the stream within one token (or one graph step of prompt
        evaluation); the pieces produced so far stand. ``extra_stop``: more stop strings (the API's
        ``stop``); ``drop_old`` False raises :class:`ContextOverflow` instead of dropping old turns.
        """
        cancel = cancel or threading.Event()
        request = thinking or ThinkingRequest(think=self.thinking.default_on)
        started = time.perf_counter()
        stats = GenerationStats(context_size=self.n_ctx)
        self.last_stats = stats
        if tools and tools.required and tools.take_calls and self.thinking.can_switch_off:
            request.think = False  # the grammar allows only the call, from the first token
        variables = thinking_variables(self.thinking, request.think, request.effort) if self.thinking.thinks else {}
        if self.thinking.thinks:
            logger.info("thinking format %s (%s): thinking %s, template variables %s, budget %s",
                        self.thinking.kind, self.thinking.summary(), "on" if request.think else "off", variables,
                        request.budget or "none")
        shaped, tool_parts = self._offer_tools(self.prompt_messages(messages, request), tools, variables)
        tokens, stop = self._prepare_prompt(shaped, settings, stats, variables, drop_old)
        yield from self._run_loop(tokens, [*stop, *extra_stop], settings, cancel, request, tool_parts, stats, started)

    def stream_completion(self, prompt: str, settings: GenerationSettings, cancel: threading.Event | None = None,
                          stop: Sequence[str] = ()) -> Iterator[Piece]:
        """Continue ``prompt`` as plain text (no chat template, no thinking): the API's
        ``/v1/completions``. Raises :class:`ContextOverflow` when the prompt leaves no room."""
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        stats = GenerationStats(context_size=self.n_ctx)
        self.last_stats = stats
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) + settings.max_tokens > self.n_ctx:
            raise ContextOverflow(len(tokens), settings.max_tokens, self.n_ctx)
        stats.prompt_tokens = len(tokens)
        stats.reused_tokens = _common_prefix(self._llm.input_ids[: self._llm.n_tokens], tokens)
        self._reset_counters()
        request = ThinkingRequest(think=False)
        fmt, self.thinking = self.thinking, ThinkingFormat()
        try:
            yield from self._run_loop(tokens, list(stop), settings, cancel, request, {}, stats, started)
        finally:
            self.thinking = fmt

    def _run_loop(self, tokens: list[int], stop: list[str], settings: GenerationSettings, cancel: threading.Event,
                  request: ThinkingRequest, tool_parts: dict[str, Any], stats: GenerationStats,
                  started: float) -> Iterator[Piece]:
        """Sample the answer to the prepared prompt ``tokens``, filling ``stats`` at the end."""
        self._cancel = cancel
        self._set_abort(True)  # only during prompt evaluation: it costs a GIL trip per graph node
        stop_ids = self._stop_ids | self._end_of_message_ids() if tool_parts else self._stop_ids
        loop = AnswerLoop(self._llm, self.thinking, request, stop_ids, stop, self._decode_special(tool_parts),
                          on_first_token=lambda: self._set_abort(False), **tool_parts)
        try:
            yield from loop.run(tokens, settings, max(1, min(settings.max_tokens, self.n_ctx - len(tokens))), cancel)
        except RuntimeError as exc:
            if not cancel.is_set():
                raise GenerationError(f"llama.cpp failed while generating: {exc}") from exc
            loop.counts.finish = "cancelled"
        finally:
            self._set_abort(False)
            self._cancel = None
            counts = loop.counts
            stats.reasoning_tokens, stats.answer_tokens = counts.reasoning_tokens, counts.answer_tokens
            stats.thinking_s, stats.thinking_closed_by = counts.thinking_s, counts.closed_by
            stats.tool_calls = [call.to_dict() for call in loop.calls]
            self._finish_stats(stats, started, counts.first_token_at, counts.finish)

    def _offer_tools(self, messages: list[dict[str, Any]], tools: ToolRequest | None,
                     variables: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The messages and template variables that offer ``tools``, and the answer loop's
        scanner, call format and grammar. A template without tools gets them in the system message."""
        if tools is None or not tools.specs:
            return messages, {}
        fmt: ToolCallFormat = self.tool_format
        if fmt.kind == "none":
            messages, fmt = with_fallback_tools(messages, tools.specs), FALLBACK_FORMAT
        else:
            variables["tools"] = [spec.for_template() for spec in tools.specs]
        if not tools.take_calls:
            return messages, {}
        parts: dict[str, Any] = {"tool_format": fmt, "scanner": None if fmt.kind == "harmony" else CallScanner(fmt)}
        spec = tools.spec(tools.required) if tools.required and tools.required != ANY_TOOL else None
        if tools.required == ANY_TOOL:
            parts["grammar"] = any_call_grammar(fmt, tools.specs)
            if parts["grammar"] is None:
                raise GenerationError(f"This model's tool calls ({fmt.kind}) name the tool in their markers: "
                                      "a required call must name one tool.")
        elif tools.required and spec is None:
            raise GenerationError(f"The required tool {tools.required!r} is not among this conversation's tools.")
        if spec is not None:
            parts["grammar"] = call_grammar(fmt, spec)
        logger.info("tools offered: %s (%s calls%s)", ", ".join(s.name for s in tools.specs), fmt.kind,
                    f", {spec.name} required" if spec else "")
        return messages, parts

    def _prepare_prompt(self, messages: Sequence[dict[str, Any]], settings: GenerationSettings,
                        stats: GenerationStats, variables: dict[str, Any],
                        drop_old: bool = True) -> tuple[list[int], list[str]]:
        """Fit ``messages`` into the context (recorded in ``stats``) and reset llama.cpp's counters;
        returns the prompt's tokens and stop strings. Without ``drop_old``, a prompt that leaves
        less than ``max_tokens`` free raises :class:`ContextOverflow`."""
        if drop_old:
            reserve = min(max(settings.max_tokens, 1), self.n_ctx // 2)
            _kept, stats.dropped_messages, tokens, stop = self._fit(messages, reserve, variables)
        else:
            _, tokens, stop = self.render(messages, variables)
            if len(tokens) + settings.max_tokens > self.n_ctx:
                raise ContextOverflow(len(tokens), settings.max_tokens, self.n_ctx)
        stats.prompt_tokens = len(tokens)
        stats.reused_tokens = _common_prefix(self._llm.input_ids[: self._llm.n_tokens], tokens)
        self._reset_counters()
        return tokens, stop

    def _reset_counters(self) -> None:
        """Zero llama.cpp's performance counters before an answer."""
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        # A prompt evaluation aborted earlier leaves its tokens queued in llama.cpp's counters
        # (the reset does not clear them); synchronizing books them, so the reset drops them.
        llama_lib.llama_synchronize(ctx)
        llama_lib.llama_perf_context_reset(ctx)

    def _finish_stats(self, stats: GenerationStats, started: float, first_at: float, finish: str) -> None:
        perf = llama_lib.llama_perf_context(self._llm._ctx.ctx)  # noqa: SLF001
        now = time.perf_counter()
        stats.prompt_eval_tokens = int(perf.n_p_eval)
        # perf reports n_eval as at least 1, so count from the KV cache: every generated token
        # but the last is evaluated into it, the last is sampled only.
        evaluated = max(0, self.cached_tokens - stats.prompt_tokens)
        stats.completion_tokens = evaluated + 1 if first_at else 0
        stats.time_to_first_token_s = (first_at - started) if first_at else 0.0
        if perf.t_eval_ms > 0:
            stats.decode_tokens_per_s = perf.n_eval / (perf.t_eval_ms / 1000.0)
        if perf.t_p_eval_ms > 0:
            stats.prompt_tokens_per_s = perf.n_p_eval / (perf.t_p_eval_ms / 1000.0)
        stats.total_s = now - started
        stats.context_used = self.cached_tokens
        stats.stop_reason = finish

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as plain content."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    n = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        n += 1
    return n
