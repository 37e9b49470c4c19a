"""The generation thread: owns the one model, answers requests with signals.

The ``Runtime`` is created, used and closed on this thread only. The GUI sends requests through
queued signals and cancels through a ``threading.Event``, so it never waits on llama.cpp.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.core.answer_recorder import AnswerRecorder
from desktop.core.model_loader import ModelFileError, open_runtime, prepare_model
from desktop.core.paths import AppPaths
from desktop.core.settings import GenerationSettings
from desktop.core.store import COMPLETE, FAILED, STOPPED


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
        self._runtime_key: tuple[str, int, int] | None = None
        self.cancel = threading.Event()

    @Slot(str, int, int)
    def load(self, path: str, n_ctx: int, n_threads: int) -> None:
        """Load ``path`` (replacing the current model) unless it is already loaded so."""
        key = (path, n_ctx, n_threads)
        if self._runtime is not None and self._runtime_key == key:
            self.model_loaded.emit(path, self._describe())
            return
        self.model_loading.emit(path)
        try:
            info, config = prepare_model(path, self._paths, n_ctx=n_ctx, n_threads=n_threads,
                                         conservative=self._conservative)
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
            "safe_mode": self._conservative, "own_template": runtime.has_own_template, "template_problem": runtime.template_problem,
        }

    @Slot()
    def unload(self) -> None:
        """Free the current model."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
            self._runtime_key = None

    @Slot(int, list, dict, int)
    def generate(self, request_id: int, messages: list, settings: dict, message_id: int) -> None:
        """Stream an answer to ``messages``, saving it into message ``message_id`` as it grows."""
        if self._runtime is None:
            self.failed.emit(request_id, "No model is loaded. Pick one in the model menu.")
            return
        gen = GenerationSettings.from_dict(settings)

        def write(content: str, status: str | None, stats: dict | None) -> None:
            self._write_answer(message_id, content, status, stats)

        recorder = AnswerRecorder(write)
        from desktop.core.runtime import GenerationError

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
        status = STOPPED if stats.get("stop_reason") == "cancelled" else COMPLETE
        recorder.finish(status, stats)
        self.finished.emit(request_id, status, stats)


class GenerationService(QObject):
    """GUI-side handle of the generation thread.

    Signals: the worker's, re-emitted on the GUI thread (see :class:`GenerationWorker`).
    """

    load_requested = Signal(str, int, int)
    generate_requested = Signal(int, list, dict, int)
    unload_requested = Signal()

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
        self._next_id = 0
        self._thread.start()

    def load(self, path: str, n_ctx: int = 0, n_threads: int = 0) -> None:
        """Ask the worker to load a model (it answers with model_loaded or model_failed)."""
        self.load_requested.emit(path, n_ctx, n_threads)

    def generate(self, messages: list[dict[str, str]], settings: dict, message_id: int) -> int:
        """Ask for an answer; returns the request id used in the token/finished signals."""
        self._next_id += 1
        self.worker.cancel.clear()
        self.generate_requested.emit(self._next_id, messages, settings, message_id)
        return self._next_id

    def stop(self) -> None:
        """Stop the answer being generated (takes effect within one token)."""
        self.worker.cancel.set()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel, unload the model on its own thread, then end the thread (bounded wait)."""
        self.stop()
        self.unload_requested.emit()
        self._thread.quit()
        self._thread.wait(timeout_ms)
