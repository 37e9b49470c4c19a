"""Choosing and loading models, for :class:`desktop.services.chat_controller.ChatController`:
the picker's list, a load (off the GUI thread, on the generation thread), new settings that
need a reload, and what the generation thread says of a load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot

from desktop.core.system.settings import AccelerationSettings, GenerationSettings, Settings


class ModelActions:
    """Mixed into the controller, which has the attributes declared here."""

    _store: Any
    _gen: Any
    _library: Any
    settings: Settings
    busy: bool
    model_path: str
    model_ready: bool
    model_info: dict
    problem: Any
    model_state: Any
    models_listed: Any

    remote_models: list  # RemoteEntry items of the engines the person added (set_remote_models)

    def refresh_models(self) -> None:
        """List the library off the GUI thread (the engines' models after it)."""
        self._store.submit(lambda _s: self._library.entries(), self._emit_models)

    def _emit_models(self, entries: list) -> None:
        self.models_listed.emit(list(entries) + list(getattr(self, "remote_models", [])))

    @Slot(list)
    def set_remote_models(self, entries: list) -> None:
        """The engines' models (read off the GUI thread by the engine service): listed after the library's."""
        self.remote_models = list(entries)
        self.refresh_models()

    def select_model(self, path: str) -> None:
        """Load a model (a library entry or a file the person opened)."""
        if not path:
            return
        if self.busy:
            self.problem.emit("Stop the answer being written before switching models.")
            return
        self._gen.load(path, self.settings.load_options(path))

    def apply_generation_settings(self, new: GenerationSettings, acceleration: AccelerationSettings | None = None,
                                  model_gpu_layers: int | None = None) -> None:
        """Use new settings; reload the model when how it is loaded changed."""
        before = self.settings.load_options(self.model_path)
        self.settings.generation = new
        if acceleration is not None:
            self.settings.acceleration = acceleration
        if model_gpu_layers is not None and self.model_path:
            if model_gpu_layers == self.settings.acceleration.gpu_layers:
                self.settings.gpu_layers_by_model.pop(self.model_path, None)
            else:
                self.settings.gpu_layers_by_model[self.model_path] = model_gpu_layers
        if self.model_path and self.settings.load_options(self.model_path) != before:
            self.select_model(self.model_path)

    @Slot(str)
    def _on_model_loading(self, path: str) -> None:
        self.model_ready = False
        self.model_state.emit("loading", f"Loading {Path(path).name}…")

    @Slot(str, dict)
    def _on_model_loaded(self, path: str, info: dict) -> None:
        self.model_path, self.model_ready, self.model_info = path, True, info
        self.settings.last_model = path
        if info.get("remote"):
            self.model_state.emit("ready", f"{info.get('name')} · on the engine '{info['remote']}' "
                                           f"({info.get('host')})" + (f" · context {info['n_ctx']}"
                                                                      if info.get("n_ctx") else ""))
            return
        self._store.submit(lambda _s: (self._library.remember(Path(path)), self._library.entries())[1],
                           self._emit_models)
        self.model_state.emit("ready", f"{info.get('name')} · {info.get('quantization')} · "
                                       f"context {info.get('n_ctx')} · {info.get('threads')} threads"
                                       + (" · safe mode" if info.get("safe_mode") else ""))
        if info.get("template_problem"):
            self.problem.emit(f"{info.get('name')}: the model's own chat template cannot be used "
                              f"({info['template_problem']}). Cove uses its built-in ChatML template for it.")

    @Slot(str, str)
    def _on_model_failed(self, path: str, message: str) -> None:
        self.model_ready = False
        self.model_state.emit("failed", message)
        self.problem.emit(message)
