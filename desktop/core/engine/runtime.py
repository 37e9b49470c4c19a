"""The in-process llama.cpp runtime: the only module that imports ``llama_cpp``.

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
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format
import llama_cpp.llama_cpp as llama_lib

from desktop.core.engine.chat_template import (CHATML_TEMPLATE, ChatTemplate, TemplateError, TemplateRefusal,
                                         merge_system_into_first_user)
from desktop.core.models.gguf import GGUFInfo, read_gguf
from desktop.core.engine.prompt import messages_for_model
from desktop.core.system.settings import DEFAULT_CONTEXT_CAP, GenerationSettings

LLAMA_CPP_VERSION: str = llama_cpp.__version__
# Set (to anything) to make every load with weight repacking abort the process, as llama.cpp's
# repacking does on Xeons with AMX: the probe then falls back, and a test that builds a repacking
# runtime without the probe's verdict takes the whole run down, on every machine.
SIMULATE_REPACK_CRASH_ENV = "COVE_PROBE_SIMULATE_REPACK_CRASH"
CACHE_TYPES = {"f16": llama_lib.GGML_TYPE_F16, "q8_0": llama_lib.GGML_TYPE_Q8_0, "q4_0": llama_lib.GGML_TYPE_Q4_0}


def _ggml_function(name: str) -> Any:
    """A function of the libggml that libllama loaded (through libllama's handle: dlsym searches its
    dependencies; Windows looks the already loaded ggml.dll up by name)."""
    try:
        return getattr(llama_lib._lib, name)  # noqa: SLF001 - llama-cpp-python's library handle
    except AttributeError:
        if os.name != "nt":
            raise
        return getattr(ctypes.CDLL("ggml.dll"), name)


def _load_dynamic_backends() -> int:
    """Load llama.cpp backends built as loadable modules; returns how many backends are registered.

    A ``GGML_BACKEND_DL`` build (the distributable CPU variant: one library per instruction-set
    level, the best one for this CPU picked at run time; see installers/README.md) registers no
    backend until one is loaded from a file, and llama-cpp-python 0.3.36 never loads them
    (abetlen/llama-cpp-python#2069), so every model would fail to load. They are where the wheel
    puts them (``site-packages/bin``) or where build.spec puts them (``llama_cpp/lib``). A build with
    its CPU backend linked in has it registered already, and nothing happens.
    """
    try:
        count, load = _ggml_function("ggml_backend_reg_count"), _ggml_function("ggml_backend_load_all_from_path")
    except (AttributeError, OSError):
        return -1
    count.argtypes, count.restype = [], ctypes.c_size_t
    load.argtypes, load.restype = [ctypes.c_char_p], None
    if count() == 0:
        package = Path(llama_cpp.__file__).resolve().parent
        for folder in (package / "lib", package.parent / "bin"):
            if folder.is_dir() and any(folder.glob("*ggml-*")):
                load(os.fsencode(folder))
                if count():
                    break
    return int(count())


BACKENDS_REGISTERED: int = _load_dynamic_backends()

class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message is for a person."""


class GenerationError(RuntimeError):
    """Generation failed; the message is for a person."""


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
    def from_dict(cls, data: dict[str, Any]) -> "LoadConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


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

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return asdict(self)


_PARAMS_LOCK = threading.Lock()


@contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """Make ``Llama()`` start from llama.cpp's default model params with ``fields`` changed.

    llama-cpp-python's constructor does not expose every field of ``llama_model_params``
    (``use_extra_bufts`` in particular), so the default-params factory it calls is wrapped for
    the duration of one construction. Its chat formatter is stubbed out for that time as well
    (see :class:`_UnusedChatFormatter`).
    """
    original = llama_lib.llama_model_default_params

    def patched() -> Any:
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    with _PARAMS_LOCK:
        llama_lib.llama_model_default_params = patched
        formatter = llama_chat_format.Jinja2ChatFormatter
        llama_chat_format.Jinja2ChatFormatter = _UnusedChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_lib.llama_model_default_params = original
            llama_chat_format.Jinja2ChatFormatter = formatter  # type: ignore[misc]


class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's ``Jinja2ChatFormatter`` while a ``Llama`` is built.

    The constructor compiles every chat template in the GGUF's metadata with a plain Jinja
    sandbox. Cove never uses those handlers (it renders with :mod:`desktop.core.engine.chat_template`),
    and that compile is unsafe: Jinja evaluates constant expressions while compiling, outside any
    time or size limit (``{{ 'a' * 10**9 }}`` takes about 20 s and 4 GB there), and a template
    that is not valid Jinja would make the model fail to load instead of falling back to ChatML.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Any:
        def unused(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("Cove renders chat templates itself")
        return unused


def default_context(info: GGUFInfo) -> int:
    """The smaller of the model's trained context and 4096 tokens."""
    trained = info.context_length or DEFAULT_CONTEXT_CAP
    return max(256, min(trained, DEFAULT_CONTEXT_CAP))


class Runtime:
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
            with _model_params(use_extra_bufts=config.use_extra_bufts):
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
        if builtin or not source:
            return ChatTemplate(CHATML_TEMPLATE, eos or "<|im_end|>", bos)
        try:
            return ChatTemplate(source, eos, bos)
        except TemplateError as exc:
            self.template_problem = str(exc)
            return ChatTemplate(CHATML_TEMPLATE, eos or "<|im_end|>", bos)

    def use_builtin_template(self, reason: str) -> None:
        """Switch to Cove's ChatML template (the model's own failed)."""
        self.template_problem = reason
        self._template = self._make_template(builtin=True)

    def render(self, messages: Sequence[dict[str, str]]) -> tuple[str, list[int], list[str]]:
        """Render the chat template: the prompt text, its tokens and the stop strings.

        If the model's own template fails, runs too long or grows too large, Cove switches to
        its built-in template for this model and says so in the raised error.
        """
        try:
            try:
                rendered = self._template.render(messages)
            except TemplateRefusal:
                if not any(m["role"] == "system" for m in messages):
                    raise
                rendered = self._template.render(merge_system_into_first_user(messages))
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

    def _fit(self, messages: Sequence[dict[str, str]],
             reserve: int) -> tuple[list[dict[str, str]], int, list[int], list[str]]:
        """:meth:`fit_messages`, also returning the kept prompt's tokens and stop strings (so a
        slow template is rendered once per answer, not twice)."""
        kept = list(messages)
        dropped = 0
        limit = max(16, self.n_ctx - reserve)
        while True:
            _, tokens, stop = self.render(kept)
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
    def _stop_on_eos(self, tokens: Any, _logits: Any) -> bool:
        return bool(len(tokens)) and int(tokens[-1]) in self._stop_ids

    def _should_abort(self, _data: Any) -> bool:
        cancel = self._cancel
        return bool(cancel is not None and cancel.is_set())

    def _set_abort(self, enabled: bool) -> None:
        ctx = self._llm._ctx.ctx  # noqa: SLF001 - the abort callback needs the raw context
        callback = self._abort_cb if enabled else ctypes.cast(None, llama_lib.ggml_abort_callback)
        llama_lib.llama_set_abort_callback(ctx, callback, None)

    def stream_chat(
        self,
        messages: Sequence[dict[str, str]],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the answer to ``messages`` in pieces; ``last_stats`` is filled when done.

        Setting ``cancel`` ends the stream within one token (or one graph step of prompt
        evaluation); the pieces produced so far stand.
        """
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        stats = GenerationStats(context_size=self.n_ctx)
        self.last_stats = stats
        reserve = min(max(settings.max_tokens, 1), self.n_ctx // 2)
        _kept, stats.dropped_messages, tokens, stop = self._fit(messages, reserve)
        stats.prompt_tokens = len(tokens)
        stats.reused_tokens = _common_prefix(self._llm.input_ids[: self._llm.n_tokens], tokens)
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        # A prompt evaluation aborted earlier leaves its tokens queued in llama.cpp's counters
        # (the reset does not clear them); synchronizing books them, so the reset drops them.
        llama_lib.llama_synchronize(ctx)
        llama_lib.llama_perf_context_reset(ctx)
        max_tokens = max(1, min(settings.max_tokens, self.n_ctx - len(tokens)))
        self._cancel = cancel
        self._set_abort(True)  # only during prompt evaluation: it costs a GIL trip per graph node
        stream = self._llm.create_completion(
            prompt=tokens,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            min_p=settings.min_p,
            repeat_penalty=settings.repeat_penalty,
            seed=settings.seed if settings.seed >= 0 else None,
            stop=stop,
            stopping_criteria=llama_cpp.StoppingCriteriaList([self._stop_on_eos]),
            stream=True,
        )
        first_at = 0.0
        finish = ""
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice.get("text") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    if not first_at:
                        first_at = time.perf_counter()
                        self._set_abort(False)
                    yield text
                if cancel.is_set():
                    finish = "cancelled"
                    break
        except RuntimeError as exc:
            if not cancel.is_set():
                raise GenerationError(f"llama.cpp failed while generating: {exc}") from exc
            finish = "cancelled"
        finally:
            stream.close()
            self._set_abort(False)
            self._cancel = None
            self._finish_stats(stats, started, first_at, finish or "stop")

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

    # -- KV cache on disk ("fast reopen") ------------------------------------------------
    def state_key(self) -> dict[str, Any]:
        """What a saved KV cache is only valid for: this file, context size and cache layout."""
        st = self.path.stat()
        return {"model": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "n_ctx": self.n_ctx, "n_batch": self.config.n_batch, "extra_bufts": self.config.use_extra_bufts,
                "llama_cpp": LLAMA_CPP_VERSION}

    def save_state(self, path: Path) -> int:
        """Write the KV cache and its tokens to ``path`` (atomically); returns the tokens saved."""
        n = self.cached_tokens
        if n == 0:
            return 0
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        tokens = (llama_lib.llama_token * n)(*self._llm.input_ids[:n].tolist())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        written = llama_lib.llama_state_seq_save_file(ctx, str(tmp).encode(), 0, tokens, n)
        if not written:
            tmp.unlink(missing_ok=True)
            return 0
        key_file = path.with_name(path.name + ".json")
        key_file.write_text(json.dumps({**self.state_key(), "tokens": n}))
        os.replace(tmp, path)
        return n

    def restore_state(self, path: Path) -> int:
        """Load a KV cache saved by :meth:`save_state` if it matches this model and settings;
        returns the tokens restored (0 when there was nothing valid to restore)."""
        key_file = path.with_name(path.name + ".json")
        try:
            saved = json.loads(key_file.read_text())
        except (OSError, ValueError):
            return 0
        if not path.is_file() or {k: saved.get(k) for k in self.state_key()} != self.state_key():
            return 0
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        capacity = self.n_ctx
        tokens = (llama_lib.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        self._llm.reset()
        read = llama_lib.llama_state_seq_load_file(ctx, str(path).encode(), 0, tokens, capacity, ctypes.byref(count))
        if not read or count.value == 0:
            self._llm.reset()
            llama_lib.llama_memory_clear(llama_lib.llama_get_memory(ctx), True)
            return 0
        n = int(count.value)
        self._llm.input_ids[:n] = tokens[:n]
        self._llm.n_tokens = n
        self._llm._requires_eval = True  # noqa: SLF001 - logits of the last token were not saved
        return n

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


def system_info() -> str:
    """llama.cpp's one-line report of the CPU features and backends it was built with."""
    return llama_lib.llama_print_system_info().decode("utf-8", "replace").strip()


def supports_gpu_offload() -> bool:
    """True when this llama-cpp-python build can offload layers to a GPU."""
    return bool(llama_lib.llama_supports_gpu_offload())


__all__ = [
    "GenerationError", "GenerationStats", "LoadConfig", "ModelLoadError", "Runtime",
    "LLAMA_CPP_VERSION", "default_context", "messages_for_model", "supports_gpu_offload",
    "system_info",
]


# -- backend report (hardware page, `cove hardware`, fit estimate) ------------------------------
_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


class _GGMLFeature(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


def _ggml_library(lib_dir: Path) -> ctypes.CDLL:
    """The bundled libggml that libllama already loaded (the same handle, so the same registry)."""
    import sys

    names = {"win32": ("ggml.dll", "libggml.dll"), "darwin": ("libggml.dylib", "libggml.so")}
    for name in names.get(sys.platform, ("libggml.so",)):
        if (lib_dir / name).exists():
            lib = ctypes.CDLL(str(lib_dir / name))
            break
    else:
        raise OSError(f"no libggml in {lib_dir}")
    void_p, size_t, text = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    signatures = {
        "ggml_backend_dev_count": ([], size_t), "ggml_backend_dev_get": ([size_t], void_p),
        "ggml_backend_dev_name": ([void_p], text), "ggml_backend_dev_description": ([void_p], text),
        "ggml_backend_dev_type": ([void_p], ctypes.c_int), "ggml_backend_dev_backend_reg": ([void_p], void_p),
        "ggml_backend_dev_memory": ([void_p, ctypes.POINTER(size_t), ctypes.POINTER(size_t)], None),
        "ggml_backend_reg_count": ([], size_t), "ggml_backend_reg_get": ([size_t], void_p),
        "ggml_backend_reg_name": ([void_p], text), "ggml_backend_reg_get_proc_address": ([void_p, text], void_p),
    }
    for fn, (args, result) in signatures.items():
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = result
    return lib


def _reg_features(lib: ctypes.CDLL, reg: int) -> dict[str, str]:
    """``ggml_backend_get_features`` of a backend registry: the CPU features its kernels use."""
    address = lib.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_get_features")
    if not address:
        return {}
    get = ctypes.CFUNCTYPE(ctypes.POINTER(_GGMLFeature), ctypes.c_void_p)(address)
    features, i = {}, 0
    array = get(reg)
    while array and array[i].name:
        features[array[i].name.decode()] = (array[i].value or b"").decode()
        i += 1
    return features


def backend_report() -> dict[str, Any]:
    """What this llama.cpp build is and sees, as plain data for :func:`desktop.core.system.hardware.detect`:
    system info, whether GPU offload is possible, the backends and devices (with free and total
    memory) from ggml's registry, the CPU backend's features and any ``libggml-cpu-*`` variants."""
    import re

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libraries = sorted(p.name for p in lib_dir.iterdir()) if lib_dir.is_dir() else []
    variants = sorted({re.sub(r"\.(so|dylib|dll).*$", "", n) for n in libraries if re.match(r"(lib)?ggml-cpu-", n)})
    report: dict[str, Any] = {
        "llama_cpp_python": LLAMA_CPP_VERSION, "system_info": system_info(),
        "gpu_offload": supports_gpu_offload(),  # also loads dynamic backends when the build has them
        "library_dir": str(lib_dir), "libraries": libraries, "cpu_variants": variants,
        "backends": [], "devices": [], "cpu_backend_features": {}, "error": ""}
    try:
        lib = _ggml_library(lib_dir)
        for i in range(lib.ggml_backend_reg_count()):
            reg = lib.ggml_backend_reg_get(i)
            name = (lib.ggml_backend_reg_name(reg) or b"").decode()
            report["backends"].append(name)
            if name == "CPU":
                report["cpu_backend_features"] = _reg_features(lib, reg)
        for i in range(lib.ggml_backend_dev_count()):
            dev = lib.ggml_backend_dev_get(i)
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            reg = lib.ggml_backend_dev_backend_reg(dev)
            report["devices"].append({
                "name": (lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                "description": (lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
                "type": _DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "unknown"),
                "backend": (lib.ggml_backend_reg_name(reg) or b"").decode() if reg else "",
                "free": int(free.value), "total": int(total.value)})
    except (OSError, AttributeError) as exc:
        report["error"] = f"ggml's device list could not be read: {exc}"
    return report


__all__ += ["backend_report"]
