"""The generation thread: owns the one model, answers requests with signals.

The ``Runtime`` is created, used and closed on this thread only. The GUI sends requests through
queued signals and cancels through a ``threading.Event``, so it never waits on llama.cpp.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.core.conversations.answer_recorder import AnswerRecorder
from desktop.core.engine.loader import ModelFileError, open_runtime, prepare_model
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import GenerationSettings
from desktop.core.conversations.store import COMPLETE, FAILED, STOPPED


KEEP_STATES = 32  # saved KV caches kept on disk (the most recent conversations)


class GenerationWorker(QObject):
    """Lives on the generation thread.

    Signals:
        model_loading(str path), model_loaded(str path, dict info), model_failed(str path, str message),
        token(int request_id, str text), finished(int request_id, str status, dict stats),
        failed(int request_id, str message)
    """

    model_loading = Signal(str)
    model_loaded = Signal(str, dict)
    model_failed = Signal(str, str)
    token = Signal(int, str)
    finished = Signal(int, str, dict)
    failed = Signal(int, str)

    def __init__(self, paths: AppPaths, write_answer: Any, conservative: bool = False) -> None:
        super().__init__()
        self._paths = paths
        self._conservative = conservative  # safe mode
        self._write_answer = write_answer  # (message_id, content, status, stats) -> None, thread-safe
        self._runtime: Any = None
        self._runtime_key: tuple | None = None
        self._kv_owner = 0  # the conversation whose tokens fill the KV cache
        self.cancel = threading.Event()
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
        if not self._system_info:
            from desktop.core.engine.runtime import supports_gpu_offload, system_info

            self._system_info, self._gpu_offload = system_info(), supports_gpu_offload()
            self._hardware = _hardware_lines()
        if self._runtime is not None and self._runtime_key == key:
            self.model_loaded.emit(path, self._describe())
            return
        self.model_loading.emit(path)
        try:
            info, config = prepare_model(path, self._paths, conservative=self._conservative, **options)
            self.unload()  # only once the new file has passed its checks
            self._runtime = open_runtime(info, config, self._paths)
            self._runtime_key = key
        except Exception as exc:  # never let the thread die silently
            if not isinstance(exc, ModelFileError):
                traceback.print_exc()
            self.model_failed.emit(path, str(exc) if isinstance(exc, ModelFileError)
                                   else f"Loading failed unexpectedly: {exc}")
            if self._runtime is not None:  # the previous model is still there and usable
                self.model_loaded.emit(str(self._runtime.path), self._describe())
            return
        self.model_loaded.emit(path, self._describe())

    def _describe(self) -> dict:
        runtime = self._runtime
        info = runtime.info
        return {
            "name": runtime.path.name.removesuffix(".gguf"), "architecture": info.architecture,
            "n_ctx": runtime.n_ctx, "threads": runtime.config.n_threads,
            "quantization": info.quantization, "repacking": runtime.config.use_extra_bufts,
            "safe_mode": self._conservative, "gpu_layers": runtime.config.n_gpu_layers,
            "flash_attention": runtime.config.flash_attn, "kv_cache_type": runtime.config.cache_type,
            "own_template": runtime.has_own_template, "template_problem": runtime.template_problem,
            "system_info": self._system_info, "gpu_offload": self._gpu_offload,
            "hardware": list(self._hardware),
        }

    @Slot()
    def unload(self) -> None:
        """Free the current model (keeping its conversation's KV cache on disk)."""
        if self._runtime is not None:
            self.leave(self._kv_owner)
            self._runtime.close()
            self._runtime = None
            self._runtime_key = None
            self._kv_owner = 0

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
        except OSError:
            traceback.print_exc()  # a cache: losing it costs time, never data

    @Slot(int)
    def forget(self, conversation_id: int) -> None:
        """A conversation was deleted: delete its KV cache too (it holds the conversation's tokens)."""
        path = self._state_path(conversation_id)
        for item in (path, path.with_name(path.name + ".json")):
            item.unlink(missing_ok=True)
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

    @Slot(int, list, dict, int, int)
    def generate(self, request_id: int, messages: list, settings: dict, message_id: int,
                 conversation_id: int = 0) -> None:
        """Stream an answer to ``messages``, saving it into message ``message_id`` as it grows."""
        if self._runtime is None:
            self.failed.emit(request_id, "No model is loaded. Pick one in the model menu.")
            return
        self._enter(conversation_id)
        gen = GenerationSettings.from_dict(settings)

        def write(content: str, status: str | None, stats: dict | None) -> None:
            self._write_answer(message_id, content, status, stats)

        recorder = AnswerRecorder(write)
        from desktop.core.engine.runtime import GenerationError

        try:
            for piece in self._runtime.stream_chat(messages, gen, self.cancel):
                recorder.add(piece)
                self.token.emit(request_id, piece)
        except GenerationError as exc:
            recorder.finish(FAILED, {"error": str(exc)})
            self.failed.emit(request_id, str(exc))
            return
        except Exception as exc:
            traceback.print_exc()
            recorder.finish(FAILED, {"error": str(exc)})
            self.failed.emit(request_id, f"Generation failed unexpectedly: {exc}")
            return
        stats = self._runtime.last_stats.to_dict()
        stats["restored_tokens"] = self.last_restored
        status = STOPPED if stats.get("stop_reason") == "cancelled" else COMPLETE
        recorder.finish(status, stats)
        self.finished.emit(request_id, status, stats)


class GenerationService(QObject):
    """GUI-side handle of the generation thread.

    Signals: the worker's, re-emitted on the GUI thread (see :class:`GenerationWorker`).
    """

    load_requested = Signal(str, dict)
    generate_requested = Signal(int, list, dict, int, int)
    unload_requested = Signal()
    leave_requested = Signal(int)
    forget_requested = Signal(int)

    def __init__(self, paths: AppPaths, write_answer: Any, parent: QObject | None = None, *,
                 conservative: bool = False) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("cove-generation")
        self.worker = GenerationWorker(paths, write_answer, conservative)
        self.worker.moveToThread(self._thread)
        self.load_requested.connect(self.worker.load)
        self.generate_requested.connect(self.worker.generate)
        self.unload_requested.connect(self.worker.unload)
        self.leave_requested.connect(self.worker.leave)
        self.forget_requested.connect(self.worker.forget)
        self._next_id = 0
        self._thread.start()

    def load(self, path: str, options: dict | None = None) -> None:
        """Ask the worker to load a model (it answers with model_loaded or model_failed)."""
        self.load_requested.emit(path, dict(options or {}))

    def generate(self, messages: list[dict[str, str]], settings: dict, message_id: int,
                 conversation_id: int = 0) -> int:
        """Ask for an answer; returns the request id used in the token/finished signals."""
        self._next_id += 1
        self.worker.cancel.clear()
        self.generate_requested.emit(self._next_id, messages, settings, message_id, conversation_id)
        return self._next_id

    def leave(self, conversation_id: int) -> None:
        """The person left a conversation (its KV cache is saved for a fast return)."""
        self.leave_requested.emit(conversation_id)

    def forget(self, conversation_id: int) -> None:
        """A conversation was deleted (its saved KV cache is deleted too)."""
        self.forget_requested.emit(conversation_id)

    def stop(self) -> None:
        """Stop the answer being generated (takes effect within one token)."""
        self.worker.cancel.set()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel, unload the model on its own thread, then end the thread (bounded wait)."""
        self.stop()
        self.unload_requested.emit()
        self._thread.quit()
        self._thread.wait(timeout_ms)


def _hardware_lines() -> list[str]:
    """This machine and llama.cpp build as lines for the Hardware page (runs on the worker thread)."""
    from desktop.core.system.hardware import detect
    from desktop.core.engine.runtime import backend_report

    try:
        return detect(backend_report()).summary()
    except Exception as exc:  # noqa: BLE001 - a report, never a reason to fail a load
        return [f"Hardware detection failed: {exc}"]
