"""Per-conversation settings: what a conversation remembers about how it is answered.

A conversation keeps the model, the preset it started from and its generation settings (system
prompt, sampling, context, threads) as one JSON object in the store. Opening it again brings them
back; a new conversation starts from the last preset the person used. Presets hold the same object
without the model being required.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from desktop.core.system.settings import GenerationSettings

MODEL, PRESET, GENERATION = "model", "preset", "generation"


def snapshot(generation: GenerationSettings, model: str = "", preset: str = "") -> dict[str, Any]:
    """The JSON object stored for a conversation or a preset."""
    data: dict[str, Any] = {GENERATION: asdict(generation)}
    if model:
        data[MODEL] = model
    if preset:
        data[PRESET] = preset
    return data


def generation_of(data: dict[str, Any], fallback: GenerationSettings) -> GenerationSettings:
    """The generation settings in ``data``; ``fallback`` when it holds none (older conversations)."""
    stored = data.get(GENERATION)
    if not isinstance(stored, dict):
        return fallback
    return GenerationSettings.from_dict(stored)


def model_of(data: dict[str, Any]) -> str:
    """The model path a conversation was answered with ("" when unknown)."""
    value = data.get(MODEL)
    return value if isinstance(value, str) else ""


def preset_of(data: dict[str, Any]) -> str:
    """The preset name a conversation started from ("" when none)."""
    value = data.get(PRESET)
    return value if isinstance(value, str) else ""
