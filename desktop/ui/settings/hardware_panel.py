"""Hardware settings: what llama.cpp runs on, GPU offload, flash attention, KV cache type."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from desktop.core.system.settings import AccelerationSettings

CPU_ONLY_EXPLANATION = (
    "This copy of llama.cpp was built for the CPU only (no CUDA, Metal or Vulkan backend), so no layers "
    "can be offloaded to a GPU. Cove runs every layer on the CPU. To use a GPU, install a GPU build of "
    "Cove (see installers/README.md).")
CACHE_TYPES = [("f16", "f16 (full quality)"), ("q8_0", "q8_0 (half the memory)"), ("q4_0", "q4_0 (a quarter)")]


class HardwarePanel(QWidget):
    """Edits :class:`AccelerationSettings` and the current model's GPU-layer override."""

    def __init__(self, acceleration: AccelerationSettings, model_info: dict, model_override: int | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._had_override = model_override is not None
        offload = bool(model_info.get("gpu_offload"))
        known = bool(model_info)
        self.backend = QLabel(self._backend_text(model_info))
        self.backend.setWordWrap(True)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("automatic (every layer that fits)")
        self.gpu_layers.setValue(model_override if model_override is not None else acceleration.gpu_layers)
        self.per_model = QCheckBox("Only for the current model")
        self.per_model.setChecked(self._had_override)
        self.gpu_note = QLabel("" if offload or not known else CPU_ONLY_EXPLANATION)
        self.gpu_note.setWordWrap(True)
        self.gpu_layers.setEnabled(offload)
        self.per_model.setEnabled(offload and bool(model_info.get("name")))
        self.flash_attention = QCheckBox("Use flash attention")
        self.flash_attention.setChecked(acceleration.flash_attention)
        self.cache_type = QComboBox()
        for value, label in CACHE_TYPES:
            self.cache_type.addItem(label, value)
        self.cache_type.setCurrentIndex(max(0, self.cache_type.findData(acceleration.kv_cache_type)))
        cache_note = QLabel("A quantized KV cache saves memory on long contexts; it turns flash attention on.")
        cache_note.setWordWrap(True)

        gpu = QGroupBox("GPU offload")
        gpu_form = QFormLayout(gpu)
        gpu_form.addRow("Layers on the GPU", self.gpu_layers)
        gpu_form.addRow("", self.per_model)
        gpu_form.addRow(self.gpu_note)
        speed = QGroupBox("Attention and cache")
        speed_form = QFormLayout(speed)
        speed_form.addRow(self.flash_attention)
        speed_form.addRow("KV cache type", self.cache_type)
        speed_form.addRow(cache_note)
        runs_on = QGroupBox("llama.cpp build")
        QVBoxLayout(runs_on).addWidget(self.backend)
        layout = QVBoxLayout(self)
        layout.addWidget(runs_on)
        layout.addWidget(gpu)
        layout.addWidget(speed)
        layout.addStretch(1)

    @staticmethod
    def _backend_text(info: dict) -> str:
        if not info:
            return "Load a model to see what llama.cpp runs on."
        where = "CPU and GPU" if info.get("gpu_offload") else "CPU only"
        layers = info.get("gpu_layers", 0)
        repack = "weight repacking on" if info.get("repacking") else "weight repacking off (not safe on this CPU)"
        machine = "\n".join(line for line in info.get("hardware", []) if not line.startswith("system info"))
        return (f"Runs on: {where}. Current model: {layers if layers >= 0 else 'all'} layers on the GPU, {repack}."
                f"\n{machine or info.get('system_info', '')}")

    def acceleration(self) -> AccelerationSettings:
        """The settings for every model (the GPU layers only when not per-model)."""
        return AccelerationSettings(
            gpu_layers=-1 if self.per_model.isChecked() else self.gpu_layers.value(),
            flash_attention=self.flash_attention.isChecked(),
            kv_cache_type=str(self.cache_type.currentData()))

    def model_gpu_layers(self) -> int | None:
        """The override for the current model, or None to use the general setting."""
        return self.gpu_layers.value() if self.per_model.isChecked() else None
