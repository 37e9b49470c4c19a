"""Typed settings with defaults, a schema version and atomic saves."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.atomic import read_json, write_json_atomic

SCHEMA_VERSION = 1
DEFAULT_CONTEXT_CAP = 4096


def default_threads() -> int:
    """Threads for generation: every core on small machines, roughly physical cores on big ones."""
    count = os.cpu_count() or 1
    return count if count <= 4 else max(4, count // 2)


@dataclass
class GenerationSettings:
    """Sampling and runtime options for one answer. ``n_ctx`` 0 means automatic."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int = -1
    max_tokens: int = 1024
    system_prompt: str = ""
    n_ctx: int = 0
    n_threads: int = 0

    def effective_threads(self) -> int:
        """The thread count to use: the setting, or the machine default."""
        return self.n_threads if self.n_threads > 0 else default_threads()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationSettings":
        """Build from a dict, ignoring unknown keys and keeping defaults for bad values."""
        result = cls()
        for f in dataclasses.fields(cls):
            if f.name in data:
                value = data[f.name]
                wanted = type(getattr(result, f.name))
                if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if isinstance(value, wanted) and not isinstance(value, bool):
                    setattr(result, f.name, value)
        return result


@dataclass
class Settings:
    """Everything Cove remembers between runs, except conversations and secrets."""

    generation: GenerationSettings = field(default_factory=GenerationSettings)
    last_model: str = ""
    last_conversation_id: int = 0
    window_geometry: str = ""
    splitter_state: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, with the schema version."""
        data = dataclasses.asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        """Read a stored dict; unknown keys are ignored, wrong types fall back to defaults."""
        result = cls()
        if not isinstance(data, dict):
            return result
        result.generation = GenerationSettings.from_dict(data.get("generation") or {})
        for name in ("last_model", "window_geometry", "splitter_state"):
            if isinstance(data.get(name), str):
                setattr(result, name, data[name])
        if isinstance(data.get("last_conversation_id"), int):
            result.last_conversation_id = data["last_conversation_id"]
        return result


def load_settings(path: Path) -> Settings:
    """Settings from ``path``; defaults when it is missing or damaged."""
    return Settings.from_dict(read_json(path, {}))


def save_settings(path: Path, settings: Settings) -> None:
    """Write settings atomically."""
    write_json_atomic(path, settings.to_dict())
