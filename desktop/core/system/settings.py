"""Typed settings with defaults, a schema version and atomic saves."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.system.atomic import read_json, write_json_atomic

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
    think: str = "auto"             # thinking models: "auto" (the model's default), "on" or "off"
    reasoning_effort: str = ""      # "low", "medium" or "high" for models with effort levels
    thinking_budget: int = 0        # most thinking tokens before Cove closes the block (0: no limit)
    tools: list[str] = field(default_factory=list)  # MCP servers this conversation may use (none: no tools)
    require_tool: str = ""          # a tool the next answer must call first (sampling constrained to the call)

    def effective_threads(self) -> int:
        """The thread count to use: the setting, or the machine default."""
        return self.n_threads if self.n_threads > 0 else default_threads()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        """Build from a dict, ignoring unknown keys and keeping defaults for bad values."""
        result = cls()
        for f in dataclasses.fields(cls):
            if f.name in data:
                value = data[f.name]
                wanted = type(getattr(result, f.name))
                if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if wanted is list:
                    value = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
                if isinstance(value, wanted) and not isinstance(value, bool):
                    setattr(result, f.name, value)
        return result


@dataclass
class AccelerationSettings:
    """How models run: GPU offload (-1 = automatic), flash attention, KV cache type."""

    gpu_layers: int = -1
    # On, as llama.cpp's own tools default to: decode measured 0.947-0.955 of the best build with it
    # off against 1.0 with it on (cove bench, SmolLM2 and Gemma 3 on 2 cores), and a smaller buffer.
    flash_attention: bool = True
    kv_cache_type: str = "f16"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccelerationSettings:
        """Build from a dict, keeping defaults for missing or bad values."""
        result = cls()
        if isinstance(data.get("gpu_layers"), int) and not isinstance(data.get("gpu_layers"), bool):
            result.gpu_layers = max(-1, data["gpu_layers"])
        if isinstance(data.get("flash_attention"), bool):
            result.flash_attention = data["flash_attention"]
        if data.get("kv_cache_type") in ("f16", "q8_0", "q4_0"):
            result.kv_cache_type = data["kv_cache_type"]
        return result


@dataclass
class ServerSettings:
    """Settings -> Server: the window's OpenAI-compatible API (off until the person switches it on;
    its API key lives in the keyring)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8844
    cors_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerSettings:
        """Read a stored dict; wrong types fall back to defaults."""
        result = cls()
        if isinstance(data.get("enabled"), bool):
            result.enabled = data["enabled"]
        if isinstance(data.get("host"), str) and data["host"].strip():
            result.host = data["host"].strip()
        if isinstance(data.get("port"), int) and 0 < data["port"] < 65536:
            result.port = data["port"]
        if isinstance(data.get("cors_origins"), list):
            result.cors_origins = [o for o in data["cors_origins"] if isinstance(o, str) and o.strip()]
        return result


@dataclass
class Settings:
    """Everything Cove remembers between runs, except conversations and secrets."""

    generation: GenerationSettings = field(default_factory=GenerationSettings)
    acceleration: AccelerationSettings = field(default_factory=AccelerationSettings)
    gpu_layers_by_model: dict[str, int] = field(default_factory=dict)  # manual overrides per model path
    # Thinking markers the person set for a model whose template does not say how it thinks:
    # model path -> [open, close]
    thinking_markers: dict[str, list[str]] = field(default_factory=dict)
    last_model: str = ""
    last_preset: str = ""  # the preset new conversations start from ("" for the settings above)
    models_dir: str = ""  # the models folder the person chose; "" means Cove's default
    last_conversation_id: int = 0
    window_geometry: str = ""
    splitter_state: str = ""
    debug_log: bool = False  # message text and prompts go into the log only when this is on
    # What the person decided about each MCP server (by its name in mcp.json): "command", the
    # command line they allowed to start; "always", tools they always allow; "disabled", tools
    # switched off in Settings -> Tools.
    tool_permissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: ServerSettings = field(default_factory=ServerSettings)

    def load_options(self, model_path: str) -> dict[str, Any]:
        """What the generation thread needs to load ``model_path`` as the person configured it."""
        gen, acc = self.generation, self.acceleration
        return {"n_ctx": gen.n_ctx, "n_threads": gen.n_threads,
                "gpu_layers": self.gpu_layers_by_model.get(model_path, acc.gpu_layers),
                "flash_attention": acc.flash_attention, "kv_cache_type": acc.kv_cache_type,
                "thinking_markers": list(self.thinking_markers.get(model_path, ()))}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, with the schema version."""
        data = dataclasses.asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Read a stored dict; unknown keys are ignored, wrong types fall back to defaults."""
        result = cls()
        if not isinstance(data, dict):
            return result
        result.generation = GenerationSettings.from_dict(data.get("generation") or {})
        result.acceleration = AccelerationSettings.from_dict(data.get("acceleration") or {})
        overrides = data.get("gpu_layers_by_model")
        if isinstance(overrides, dict):
            result.gpu_layers_by_model = {k: v for k, v in overrides.items()
                                          if isinstance(k, str) and isinstance(v, int) and v >= -1}
        markers = data.get("thinking_markers")
        if isinstance(markers, dict):
            result.thinking_markers = {k: list(v) for k, v in markers.items() if isinstance(k, str)
                                       and isinstance(v, list) and len(v) == 2 and all(isinstance(s, str) for s in v)}
        for name in ("last_model", "last_preset", "models_dir", "window_geometry", "splitter_state"):
            if isinstance(data.get(name), str):
                setattr(result, name, data[name])
        if isinstance(data.get("last_conversation_id"), int):
            result.last_conversation_id = data["last_conversation_id"]
        if isinstance(data.get("debug_log"), bool):
            result.debug_log = data["debug_log"]
        result.tool_permissions = _tool_permissions(data.get("tool_permissions"))
        result.server = ServerSettings.from_dict(data.get("server") or {})
        return result


def _tool_permissions(data: Any) -> dict[str, dict[str, Any]]:
    """Stored tool decisions, with anything of the wrong type left out."""
    if not isinstance(data, dict):
        return {}
    result: dict[str, dict[str, Any]] = {}
    for server, entry in data.items():
        if not isinstance(server, str) or not isinstance(entry, dict):
            continue
        kept: dict[str, Any] = {}
        if isinstance(entry.get("command"), str):
            kept["command"] = entry["command"]
        for key in ("always", "disabled"):
            if isinstance(entry.get(key), list):
                kept[key] = [name for name in entry[key] if isinstance(name, str)]
        result[server] = kept
    return result


def load_settings(path: Path) -> Settings:
    """Settings from ``path``; defaults when it is missing or damaged."""
    return Settings.from_dict(read_json(path, {}))


def save_settings(path: Path, settings: Settings) -> None:
    """Write settings atomically."""
    write_json_atomic(path, settings.to_dict())
