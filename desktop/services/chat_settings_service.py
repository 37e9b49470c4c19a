"""Per-conversation settings and named presets, kept in the store off the GUI thread.

Each conversation remembers the model and generation settings it is answered with (saved when an
answer starts and when the person changes settings in it); opening it brings them back. A new
conversation starts from the last preset the person chose or saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.conversations.chat_settings import generation_of, model_of, preset_of, snapshot
from desktop.core.conversations.records import Preset
from desktop.core.conversations.store import Message, Store
from desktop.core.system.settings import AccelerationSettings, GenerationSettings
from desktop.services.chat_controller import ChatController
from desktop.services.store_service import StoreService


class ChatSettingsService(QObject):
    """Signals:
        presets_changed(list): every Preset, by name
        applied(str): settings were applied from a conversation or preset (its preset name, or "")
    """

    presets_changed = Signal(list)
    applied = Signal(str)

    def __init__(self, controller: ChatController, store: StoreService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._store = store
        self.presets: list[Preset] = []
        self.conversation_preset = ""  # the preset the open conversation's settings came from ("" custom)
        controller.conversation_opened.connect(self._on_opened)
        controller.answer_started.connect(self._on_answer_started)

    @property
    def current_preset(self) -> str:
        """The preset new conversations start from ("" for none)."""
        return self._controller.settings.last_preset

    # -- presets ---------------------------------------------------------------------------------
    def refresh_presets(self) -> None:
        """Read the presets (signal presets_changed)."""
        self._store.submit(lambda s: s.list_presets(), self._on_presets)

    def save_preset(self, name: str, generation: GenerationSettings) -> None:
        """Create or replace a preset from ``generation`` and use it from now on."""
        data = snapshot(generation)

        def job(store: Store) -> list[Preset]:
            store.save_preset(name, data)
            return store.list_presets()

        self._controller.settings.last_preset = self.conversation_preset = " ".join(name.split())
        self._store.submit(job, self._on_presets)

    def delete_preset(self, name: str) -> None:
        """Delete a preset (conversations that started from it keep their own settings)."""
        if self._controller.settings.last_preset == name:
            self._controller.settings.last_preset = ""
        if self.conversation_preset == name:
            self.conversation_preset = ""
        self._store.submit(lambda s: (s.delete_preset(name), s.list_presets())[1], self._on_presets)

    def apply(self, generation: GenerationSettings, acceleration: AccelerationSettings | None = None,
              model_gpu_layers: int | None = None, preset: str | None = None) -> None:
        """Use settings from the Settings dialog for this conversation (and as the default)."""
        if preset is not None:
            self.conversation_preset = preset
            if preset:  # new conversations start from the last preset chosen
                self._controller.settings.last_preset = preset
        self._controller.apply_generation_settings(generation, acceleration, model_gpu_layers)
        self._save_current()

    def _on_presets(self, presets: list[Preset]) -> None:
        self.presets = list(presets)
        self.presets_changed.emit(self.presets)

    # -- conversations -----------------------------------------------------------------------------
    def _on_opened(self, conversation_id: int, _messages: list) -> None:
        self.conversation_preset = "" if conversation_id else self.current_preset
        if conversation_id:
            self._store.submit(lambda s: with_model_check(s.get_conversation_settings(conversation_id)),
                               lambda found: self._use(*found, conversation_id, ""))
        elif self.current_preset:
            name = self.current_preset

            def job(store: Store) -> tuple[dict[str, Any], bool]:
                found = [p for p in store.list_presets() if p.name == name]
                return with_model_check(found[0].settings if found else {})

            self._store.submit(job, lambda found: self._use(*found, 0, name))

    def _use(self, data: dict[str, Any], model_present: bool, conversation_id: int, preset: str) -> None:
        """Apply stored settings if the person is still where they were asked for."""
        c = self._controller
        if not data or c.conversation_id != conversation_id or c.busy:
            return
        generation, model = generation_of(data, c.settings.generation), model_of(data)
        if model and model != c.model_path and model_present:
            c.settings.generation = generation  # one load, of that model with these settings
            c.select_model(model)
        else:
            c.apply_generation_settings(generation)  # reloads only if context or threads changed
        self.conversation_preset = preset or preset_of(data)
        self.applied.emit(self.conversation_preset)

    def _on_answer_started(self, message: Message) -> None:
        self._save_current(message.conversation_id)

    def _save_current(self, conversation_id: int = 0) -> None:
        c = self._controller
        cid = conversation_id or c.conversation_id
        if not cid or self._store.read_only:
            return
        data = snapshot(c.settings.generation, c.model_path, self.conversation_preset)
        self._store.submit(lambda s: s.set_conversation_settings(cid, data))


def with_model_check(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Stored settings and whether the model they name is on disk (run on the store thread: the
    GUI thread never waits on the disk)."""
    model = model_of(data) if data else ""
    return data, bool(model) and Path(model).is_file()
