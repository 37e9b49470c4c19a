"""The generation thread: owns the one model, answers requests with signals.

The ``Runtime`` is created, used and closed on this thread only. The GUI sends requests through
queued signals and cancels through a ``threading.Event``, so it never waits on llama.cpp.
Failures follow the contract of :mod:`desktop.services.background`: each is logged
(:func:`log_failure`), then reported, here as the ``model_failed`` or ``failed`` signal.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.core.conversations.answer_recorder import AnswerRecorder
from desktop.core.conversations.records import COMPLETE, FAILED, STOPPED
from desktop.core.engine.answer_loop import ThinkingRequest
from desktop.core.engine.loader import ModelFileError, open_runtime, prepare_model
from desktop.core.engine.stats import GenerationError
from desktop.core.remote.model_keys import parse_remote_key
from desktop.core.system.hardware import detect
from desktop.core.system.paths import AppPaths
from desktop.core.system.secrets import SecretStore
from desktop.core.system.settings import GenerationSettings
from desktop.core.tools.specs import TOOL_CALL, ToolSpec
from desktop.services.background import log_failure

logger = logging.getLogger(__name__)

KEEP_STATES = 32  # saved KV caches kept on disk (the most recent conversations)


class GenerationWorker(QObject):
    """Lives on the generation thread. Its signals are re-emitted by :class:`GenerationService`,
    which is what the rest of the app connects to (they are documented there)."""

    model_loading = Signal(str)
    model_loaded = Signal(str, dict)
    model_failed = Signal(str, str)
    piece = Signal(int, str, str)
    finished = Signal(int, str, dict)
    failed = Signal(int, str)

    def __init__(self, paths: AppPaths, write_answer: Any, conservative: bool = False,
                 secrets: Any = None) -> None:
        super().__init__()
        self._paths = paths
        self._secrets = secrets or SecretStore()  # remote engines' API keys, read on this thread
        self._conservative = conservative  # safe mode
        self._write_answer = write_answer  # (message_id, content, status, stats, reasoning) -> None, thread-safe
        self._runtime: Any = None
        self._runtime_key: tuple | None = None
        self._kv_owner = 0  # the conversation whose tokens fill the KV cache
        self.cancel = threading.Event()
        self.answer_now = threading.Event()  # close a thinking model's reasoning and answer
        self.last_restored = 0  # tokens restored from disk for the last answer (0: none)
        self._system_info = ""  # llama.cpp's build report, read on this thread (importing llama_cpp is slow)
        self._gpu_offload = False
        self._hardware: list[str] = []  # HardwareInfo.summary(): CPU, memory, llama.cpp build and devices

    @Slot(str, dict)
    def load(self, path: str, options: dict) -> None:
        """Load ``path`` (replacing the current model) unless it is already loaded so.

        ``options``: n_ctx, n_threads, gpu_layers, flash_attention, kv_cache_type (see Settings.load_options).
        """
        key = (path, tuple(sorted(options.items())))
        if self._runtime is not None and self._runtime_key == key:
            self.model_loaded.emit(path, self._describe())
            return
        self.model_loading.emit(path)
        if parse_remote_key(path):
            self._load_remote(path, key)
            return
        try:
            self._read_build()
            options = dict(options)
            markers = options.pop("thinking_markers", ())
            info, config = prepare_model(path, self._paths, conservative=self._conservative, **options)
            self.unload()  # only once the new file has passed its checks
            self._runtime = open_runtime(info, config, self._paths)
            if len(markers) == 2:
                self._runtime.set_thinking_markers(*markers)
            self._runtime_key = key
        except Exception as exc:  # noqa: BLE001 - never let the thread die silently
            log_failure(logger, f"loading {Path(path).name}", exc, (ModelFileError,))
            self.model_failed.emit(path, str(exc) if isinstance(exc, ModelFileError)
                                   else f"Loading failed unexpectedly: {exc}")
            if self._runtime is not None:  # the previous model is still there and usable
                self.model_loaded.emit(str(self._runtime.path), self._describe())
            return
        self.model_loaded.emit(path, self._describe())

    def _load_remote(self, key: str, options_key: tuple) -> None:
        """Use a model of a remote engine (no file, no probe: the engine has it loaded)."""
        from desktop.core.remote.remote_models import open_remote  # lazy: only for a remote model

        try:
            runtime = open_remote(self._paths, self._secrets, key)
        except GenerationError as exc:
            self.model_failed.emit(key, str(exc))
            if self._runtime is not None:
                self.model_loaded.emit(str(self._runtime_key[0]), self._describe())
            return
        self.unload()
        self._runtime, self._runtime_key = runtime, options_key
        self.model_loaded.emit(key, self._describe())

    def _read_build(self) -> None:
        """llama.cpp's build and this machine, once (for the Hardware page and the status line)."""
        if self._system_info:
            return
        # lazy: this imports llama_cpp (slow); here it happens on the generation thread, not at start-up
        from desktop.core.engine.backends import backend_report, supports_gpu_offload, system_info

        self._system_info, self._gpu_offload = system_info(), supports_gpu_offload()
        try:
            self._hardware = detect(backend_report()).summary()
        except Exception as exc:  # noqa: BLE001 - a report, never a reason to fail a load
            log_failure(logger, "hardware detection", exc)
            self._hardware = [f"Hardware detection failed: {exc}"]

    def _describe(self) -> dict:
        runtime = self._runtime
        if parse_remote_key(str(self._runtime_key[0])):
            return {"name": runtime.model, "remote": runtime.config.name, "host": runtime.host,
                    "n_ctx": runtime.n_ctx, "own_template": True, "template_problem": "",
                    "thinking": {**runtime.thinking.to_dict(), "summary": runtime.thinking.summary(),
                                 "thinks": False, "can_switch_off": False},
                    "system_info": self._system_info, "gpu_offload": False, "hardware": list(self._hardware)}
        info = runtime.info
        return {
            "name": runtime.path.name.removesuffix(".gguf"), "architecture": info.architecture,
            "n_ctx": runtime.n_ctx, "threads": runtime.config.n_threads,
            "quantization": info.quantization, "repacking": runtime.config.use_extra_bufts,
            "safe_mode": self._conservative, "gpu_layers": runtime.config.n_gpu_layers,
            "flash_attention": runtime.config.flash_attn, "kv_cache_type": runtime.config.cache_type,
            "own_template": runtime.has_own_template, "template_problem": runtime.template_problem,
            "thinking": {**runtime.thinking.to_dict(), "summary": runtime.thinking.summary(),
                         "thinks": runtime.thinking.thinks, "can_switch_off": runtime.thinking.can_switch_off},
            "system_info": self._system_info, "gpu_offload": self._gpu_offload,
            "hardware": list(self._hardware),
        }

    @Slot()
    def unload(self) -> None:
        """Free the current model (keeping its conversation's KV cache on disk)."""
        if self._runtime is not None:
            self.leave(self._kv_owner)
            runtime, self._runtime, self._runtime_key, self._kv_owner = self._runtime, None, None, 0
            try:
                runtime.close()
            except Exception as exc:  # noqa: BLE001 - the model is gone either way; log why it did not close
                log_failure(logger, "closing the model", exc)

    # -- KV cache per conversation ("fast reopen") ------------------------------------------
    def _state_path(self, conversation_id: int) -> Path:
        return self._paths.kv_state(conversation_id)

    @Slot(int)
    def leave(self, conversation_id: int) -> None:
        """The person left a conversation: keep its KV cache on disk for a fast return."""
        if self._runtime is None or not conversation_id or conversation_id != self._kv_owner:
            return
        try:
            self._runtime.save_state(self._state_path(conversation_id))
            self._prune_states()
        except OSError as exc:  # a cache: losing it costs time, never data
            log_failure(logger, "saving the conversation's KV cache", exc, (OSError,))

    @Slot(int)
    def forget(self, conversation_id: int) -> None:
        """A conversation was deleted: delete its KV cache too (it holds the conversation's tokens)."""
        path = self._state_path(conversation_id)
        try:
            for item in (path, path.with_name(path.name + ".json")):
                item.unlink(missing_ok=True)
        except OSError as exc:
            log_failure(logger, "deleting a conversation's KV cache", exc, (OSError,))
        if self._kv_owner == conversation_id:
            self._kv_owner = 0

    def _prune_states(self, keep: int = KEEP_STATES) -> None:
        states = sorted(self._state_path(0).parent.glob("conversation-*.state"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in states[keep:]:
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".json").unlink(missing_ok=True)

    def _enter(self, conversation_id: int) -> None:
        self.last_restored = 0
        if conversation_id == self._kv_owner:
            return
        self.leave(self._kv_owner)
        self._kv_owner = conversation_id
        if conversation_id:
            self.last_restored = self._runtime.restore_state(self._state_path(conversation_id))

    @Slot(int, list, dict, int, int, dict)
    def generate(self, request_id: int, messages: list, settings: dict, message_id: int,
                 conversation_id: int = 0, tools: dict | None = None) -> None:
        """Stream an answer to ``messages``, saving it into message ``message_id`` as it grows.
        ``tools``: {"specs": [ToolSpec fields], "required": name, "take_calls": bool} or empty."""
        if self._runtime is None:
            self.failed.emit(request_id, "No model is loaded. Pick one in the model menu.")
            return
        def write(content: str, reasoning: str, status: str | None, stats: dict | None) -> None:
            self._write_answer(message_id, content, status, stats, reasoning)

        recorder = AnswerRecorder(write)
        try:
            self._enter(conversation_id)
            generation = GenerationSettings.from_dict(settings)
            for piece in self._runtime.stream_chat(messages, generation, self.cancel, self._thinking(generation),
                                                   tool_request(tools or {})):
                if piece.kind != TOOL_CALL:  # calls are stored as the message's calls, not its text
                    recorder.add(piece.text, piece.kind)
                self.piece.emit(request_id, piece.kind, piece.text)
        except Exception as exc:  # noqa: BLE001 - logged, and the answer says it failed
            log_failure(logger, "generating an answer", exc, (GenerationError,))
            recorder.finish(FAILED, {"error": str(exc)})
            self.failed.emit(request_id, str(exc) if isinstance(exc, GenerationError)
                             else f"Generation failed unexpectedly: {exc}")
            return
        stats = self._runtime.last_stats.to_dict()
        stats["restored_tokens"] = self.last_restored
        status = STOPPED if stats.get("stop_reason") == "cancelled" else COMPLETE
        recorder.finish(status, stats)
        self.finished.emit(request_id, status, stats)


    @Slot(object)
    def serve(self, job: Any) -> None:
        """Answer an API request (a :class:`~desktop.core.server.jobs.Job`) with the loaded model,
        between the window's own answers. The conversation whose tokens fill the KV cache keeps
        them on disk first, so its next answer restores them instead of evaluating them again."""
        from desktop.core.server.job_runner import serve_job  # lazy: keeps the server out of start-up

        self.leave(self._kv_owner)
        self._kv_owner = 0
        serve_job(self._runtime, job)

    def _thinking(self, settings: GenerationSettings) -> ThinkingRequest:
        """What this conversation's settings ask of a thinking model."""
        fmt = self._runtime.thinking
        think = fmt.default_on if settings.think not in ("on", "off") else settings.think == "on"
        return ThinkingRequest(think, settings.reasoning_effort, max(0, settings.thinking_budget), self.answer_now)


def tool_request(data: dict) -> Any:
    """The engine's ToolRequest from its plain-data form (None when no tools are offered)."""
    specs = [ToolSpec(**{k: v for k, v in s.items() if k in ToolSpec.__dataclass_fields__})
             for s in data.get("specs", []) if isinstance(s, dict) and s.get("name")]
    if not specs:
        return None
    # lazy: the engine imports llama_cpp (slow); by the time an answer runs, a load has imported it
    from desktop.core.engine.tool_use import ToolRequest

    return ToolRequest(specs, str(data.get("required") or ""), bool(data.get("take_calls", True)))


class GenerationService(QObject):
    """GUI-side handle of the generation thread: requests go to its worker as queued signals, and
    the worker's signals are re-emitted here, on the GUI thread. Connect to these, never to the
    worker.

    Signals:
        model_loading(str path): a load began.
        model_loaded(str path, dict info): a model is ready (``info`` as the Hardware page shows it);
            also after a failed load when the previous model is still loaded.
        model_failed(str path, str message): a load failed; the message is for a person.
        piece(int request_id, str kind, str piece): the next streamed piece of an answer: ``kind``
            'reasoning' (a thinking model's thoughts), 'answer', or 'tool_call' (a call's raw text).
        finished(int request_id, str status, dict stats): an answer ended ('complete' or 'stopped').
        failed(int request_id, str message): an answer failed; the message is for a person.
    """

    model_loading = Signal(str)
    model_loaded = Signal(str, dict)
    model_failed = Signal(str, str)
    piece = Signal(int, str, str)
    finished = Signal(int, str, dict)
    failed = Signal(int, str)

    load_requested = Signal(str, dict)
    serve_requested = Signal(object)
    generate_requested = Signal(int, list, dict, int, int, dict)
    unload_requested = Signal()
    leave_requested = Signal(int)
    forget_requested = Signal(int)

    def __init__(self, paths: AppPaths, write_answer: Any, parent: QObject | None = None, *,
                 conservative: bool = False, secrets: Any = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("cove-generation")
        self._worker = GenerationWorker(paths, write_answer, conservative, secrets)
        self._worker.moveToThread(self._thread)
        w = self._worker
        for request, slot in ((self.load_requested, w.load), (self.generate_requested, w.generate),
                              (self.unload_requested, w.unload), (self.leave_requested, w.leave),
                              (self.forget_requested, w.forget), (self.serve_requested, w.serve)):
            request.connect(slot)
        # Signal to signal: queued, since this object lives on the GUI thread and the worker does not.
        for source, target in ((w.model_loading, self.model_loading), (w.model_loaded, self.model_loaded),
                               (w.model_failed, self.model_failed), (w.piece, self.piece),
                               (w.finished, self.finished), (w.failed, self.failed)):
            source.connect(target)
        self._next_id = 0
        self._thread.start()

    def load(self, path: str, options: dict | None = None) -> None:
        """Ask the worker to load a model (it answers with model_loaded or model_failed)."""
        self.load_requested.emit(path, dict(options or {}))

    def generate(self, messages: list[dict[str, Any]], settings: dict, message_id: int,
                 conversation_id: int = 0, tools: dict | None = None) -> int:
        """Ask for an answer; returns the request id used in the piece/finished/failed signals.
        ``tools``: what :func:`tool_request` reads (the finished stats then list the calls)."""
        self._next_id += 1
        self._worker.cancel.clear()
        self._worker.answer_now.clear()
        self.generate_requested.emit(self._next_id, messages, settings, message_id, conversation_id, tools or {})
        return self._next_id

    def serve(self, job: Any) -> None:
        """Queue an API job for the generation thread (from any thread: the signal is queued)."""
        self.serve_requested.emit(job)

    def leave(self, conversation_id: int) -> None:
        """The person left a conversation (its KV cache is saved for a fast return)."""
        self.leave_requested.emit(conversation_id)

    def forget(self, conversation_id: int) -> None:
        """A conversation was deleted (its saved KV cache is deleted too)."""
        self.forget_requested.emit(conversation_id)

    def stop(self) -> None:
        """Stop the answer being generated (takes effect within one token)."""
        self._worker.cancel.set()

    def answer_now(self) -> None:
        """End a thinking model's reasoning now: it goes on to the answer (within one token)."""
        self._worker.answer_now.set()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel, unload the model on its own thread, then end the thread (bounded wait)."""
        self.stop()
        self.unload_requested.emit()
        self._thread.quit()
        self._thread.wait(timeout_ms)
