"""The settings dialog: generation (system prompt, sampling, context, threads) and privacy."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QPlainTextEdit,
                               QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from desktop.core.settings import GenerationSettings, default_threads


class GenerationPanel(QWidget):
    """Edits a copy of :class:`GenerationSettings`."""

    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        form = QFormLayout()
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Seed", self.seed)
        form.addRow("Max answer tokens", self.max_tokens)
        form.addRow("Context length", self.n_ctx)
        form.addRow("Threads", self.n_threads)
        note = QLabel("Changing the context length or threads reloads the model.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addStretch(1)

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
        return GenerationSettings(
            temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
            min_p=self.min_p.value(), repeat_penalty=self.repeat_penalty.value(), seed=self.seed.value(),
            max_tokens=self.max_tokens.value(), system_prompt=self.system_prompt.toPlainText(),
            n_ctx=self.n_ctx.value(), n_threads=self.n_threads.value())

    def restore_defaults(self) -> None:
        """Put the default values in the fields (applied on OK)."""
        d = GenerationSettings()
        self.system_prompt.setPlainText(d.system_prompt)
        for box, value in ((self.temperature, d.temperature), (self.top_p, d.top_p), (self.top_k, d.top_k),
                           (self.min_p, d.min_p), (self.repeat_penalty, d.repeat_penalty), (self.seed, d.seed),
                           (self.max_tokens, d.max_tokens), (self.n_ctx, d.n_ctx), (self.n_threads, d.n_threads)):
            box.setValue(value)



class SettingsDialog(QDialog):
    """Generation, hardware and privacy settings. Signals: applied(tuple) on OK."""

    applied = Signal(object)

    def __init__(self, settings: GenerationSettings, privacy: QWidget, hardware: QWidget,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(620, 560)
        self.generation = GenerationPanel(settings)
        self.privacy = privacy
        self.hardware = hardware
        self.tabs = QTabWidget()
        self.tabs.addTab(self.generation, "Generation")
        self.tabs.addTab(hardware, "Hardware")
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

    def accept(self) -> None:
        """Apply and close: ``applied`` carries (GenerationSettings, AccelerationSettings, model GPU layers)."""
        self.applied.emit((self.generation.values(), self.hardware.acceleration(), self.hardware.model_gpu_layers()))
        super().accept()
