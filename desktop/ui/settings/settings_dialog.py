"""The settings dialog: generation (system prompt, sampling, context, threads; presets), hardware,
tools (MCP servers) and privacy. Generation settings belong to the open conversation; presets are named sets of them."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.core.conversations.chat_settings import generation_of
from desktop.core.system.settings import GenerationSettings, default_threads

NO_PRESET = "(no preset)"


class GenerationPanel(QWidget):
    """Edits a copy of :class:`GenerationSettings`, with named presets.

    Signals: save_preset_requested(str name, object GenerationSettings), delete_preset_requested(str).
    """

    save_preset_requested = Signal(str, object)
    delete_preset_requested = Signal(str)

    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None, *,
                 presets: list[Any] | None = None, current_preset: str = "") -> None:
        super().__init__(parent)
        self.preset = QComboBox()
        self.preset.setToolTip("Fill in the settings below from a saved preset")
        self.save_preset = QPushButton("Save as preset…")
        self.delete_preset = QPushButton("Delete preset")
        self.name_dialog: QInputDialog | None = None
        self.set_presets(presets or [], current_preset)
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText("Optional instructions the model sees before every conversation")
        self.system_prompt.setFixedHeight(80)
        self.temperature = self._double(settings.temperature, 0.0, 2.0, 0.05)
        self.top_p = self._double(settings.top_p, 0.0, 1.0, 0.01)
        self.top_k = self._int(settings.top_k, 0, 1000)
        self.min_p = self._double(settings.min_p, 0.0, 1.0, 0.01)
        self.repeat_penalty = self._double(settings.repeat_penalty, 0.5, 2.0, 0.01)
        self.seed = self._int(settings.seed, -1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.max_tokens = self._int(settings.max_tokens, 1, 32768)
        self.n_ctx = self._int(settings.n_ctx, 0, 131072)
        self.n_ctx.setSpecialValueText("automatic (model's, at most 4096)")
        self.n_ctx.setSingleStep(512)
        self.n_threads = self._int(settings.n_threads, 0, 256)
        self.n_threads.setSpecialValueText(f"automatic ({default_threads()})")
        self.thinking_budget = self._int(settings.thinking_budget, 0, 32768)
        self.thinking_budget.setSpecialValueText("no limit")
        self.thinking_budget.setSingleStep(128)
        self.thinking_budget.setToolTip("For models that think before answering: after this many tokens of "
                                        "thinking, Cove closes the thinking and the model answers")
        self._shown = settings  # fields the dialog does not edit (thinking on/off) are kept as they are
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset, 1)
        preset_row.addWidget(self.save_preset)
        preset_row.addWidget(self.delete_preset)
        form = QFormLayout()
        form.addRow("Preset", preset_row)
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Seed", self.seed)
        form.addRow("Max answer tokens", self.max_tokens)
        form.addRow("Thinking budget (tokens)", self.thinking_budget)
        form.addRow("Context length", self.n_ctx)
        form.addRow("Threads", self.n_threads)
        note = QLabel("These settings are kept with the open conversation; a new conversation starts from the "
                      "preset chosen here. Changing the context length or threads reloads the model.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addStretch(1)
        self.preset.activated.connect(self._preset_chosen)
        self.save_preset.clicked.connect(self._ask_preset_name)
        self.delete_preset.clicked.connect(self._delete_preset)

    # -- presets ---------------------------------------------------------------------------------
    def set_presets(self, presets: list[Any], current: str) -> None:
        """Fill the preset list (``Preset`` items), selecting ``current``."""
        self._presets = {p.name: p for p in presets}
        self.preset.clear()
        self.preset.addItem(NO_PRESET, "")
        for name in self._presets:
            self.preset.addItem(name, name)
        self.preset.setCurrentIndex(max(0, self.preset.findData(current)))
        self.delete_preset.setEnabled(bool(self.selected_preset()))

    def selected_preset(self) -> str:
        """The preset selected in the list ("" for none)."""
        return str(self.preset.currentData() or "")

    def chosen_preset(self) -> str:
        """The selected preset's name; "" for none, or when the fields were changed since it was
        chosen (the settings then belong to the conversation, and the preset stays as saved)."""
        name = self.selected_preset()
        preset = self._presets.get(name)
        if preset is None or generation_of(preset.settings, self.values()) != self.values():
            return ""
        return name

    def _preset_chosen(self, _index: int) -> None:
        preset = self._presets.get(self.selected_preset())
        self.delete_preset.setEnabled(preset is not None)
        if preset is not None:
            self.show_values(generation_of(preset.settings, self.values()))

    def _ask_preset_name(self) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Save as preset")
        dialog.setLabelText("Name of the preset (an existing name is replaced):")
        dialog.setTextValue(self.selected_preset())
        dialog.textValueSelected.connect(self._save_as)
        self.name_dialog = dialog
        dialog.open()

    def _save_as(self, name: str) -> None:
        name = " ".join(name.split())
        if name:
            self.save_preset_requested.emit(name, self.values())

    def _delete_preset(self) -> None:
        name = self.selected_preset()
        if name:
            self.delete_preset_requested.emit(name)

    @staticmethod
    def _double(value: float, low: float, high: float, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        return box

    @staticmethod
    def _int(value: int, low: int, high: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        box.setValue(value)
        return box

    def values(self) -> GenerationSettings:
        """The settings as edited."""
        return dataclasses.replace(
            self._shown,
            temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
            min_p=self.min_p.value(), repeat_penalty=self.repeat_penalty.value(), seed=self.seed.value(),
            max_tokens=self.max_tokens.value(), system_prompt=self.system_prompt.toPlainText(),
            n_ctx=self.n_ctx.value(), n_threads=self.n_threads.value(), thinking_budget=self.thinking_budget.value())

    def restore_defaults(self) -> None:
        """Put the default values in the fields (applied on OK)."""
        self.show_values(GenerationSettings())

    def show_values(self, d: GenerationSettings) -> None:
        """Put ``d`` in the fields (applied on OK)."""
        self._shown = d
        self.system_prompt.setPlainText(d.system_prompt)
        for box, value in ((self.temperature, d.temperature), (self.top_p, d.top_p), (self.top_k, d.top_k),
                           (self.min_p, d.min_p), (self.repeat_penalty, d.repeat_penalty), (self.seed, d.seed),
                           (self.max_tokens, d.max_tokens), (self.n_ctx, d.n_ctx), (self.n_threads, d.n_threads),
                           (self.thinking_budget, d.thinking_budget)):
            box.setValue(value)



class SettingsDialog(QDialog):
    """Generation, hardware, tools and privacy settings. Signals: applied(tuple) on OK. The Tools
    tab (``tools``, shown when given) applies its changes at once, not on OK."""

    applied = Signal(object)

    def __init__(self, settings: GenerationSettings, privacy: QWidget, hardware: QWidget,
                 parent: QWidget | None = None, *, presets: list[Any] | None = None, current_preset: str = "",
                 tools: QWidget | None = None, extra_tabs: list[tuple[str, QWidget]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(640, 640)
        self.generation = GenerationPanel(settings, presets=presets, current_preset=current_preset)
        self.privacy = privacy
        self.hardware = hardware
        self.tabs = QTabWidget()
        self.tabs.addTab(self.generation, "Generation")
        self.tabs.addTab(hardware, "Hardware")
        self.tools = tools
        if tools is not None:
            self.tabs.addTab(tools, "Tools")
        self.extra_tabs = dict(extra_tabs or [])  # Server, Engines: each applies at once, like Tools
        for name, tab in (extra_tabs or []):
            self.tabs.addTab(tab, name)
        self.tabs.addTab(privacy, "Privacy")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.generation.restore_defaults)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

    def show_tab(self, name: str) -> None:
        """Bring the tab called ``name`` to the front (the first one when there is none)."""
        names = [self.tabs.tabText(i) for i in range(self.tabs.count())]
        self.tabs.setCurrentIndex(names.index(name) if name in names else 0)

    def accept(self) -> None:
        """Apply and close: ``applied`` carries (GenerationSettings, AccelerationSettings, model GPU layers,
        preset name)."""
        self.applied.emit((self.generation.values(), self.hardware.acceleration(), self.hardware.model_gpu_layers(),
                           self.generation.chosen_preset()))
        super().accept()
