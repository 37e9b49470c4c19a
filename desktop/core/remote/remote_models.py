"""Remote models as the rest of Cove names them: ``engine:NAME/MODEL`` keys in the model picker
and the stored conversation, the engines' model lists, and opening one for generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from desktop.core.remote.engine_config import EngineConfig, find_engine, host_port, key_name, load_engines
from desktop.core.remote.model_keys import PREFIX, parse_remote_key, remote_key
from desktop.core.remote.openai_client import OpenAIClient, RemoteError
from desktop.core.remote.remote_runtime import RemoteRuntime
from desktop.core.system.paths import AppPaths

_CONTEXT_FIELDS = ("max_model_len", "context_length", "context_window", "n_ctx", "max_context_length")


@dataclass(frozen=True)
class RemoteEntry:
    """A model of an engine, as the model picker lists it (``size`` 0: not on this computer)."""

    key: str
    name: str
    engine: str
    host: str
    n_ctx: int = 0
    size: int = 0
    source: str = "remote"


@dataclass
class EngineListing:
    """One engine's models, or why they could not be read."""

    engine: EngineConfig
    models: list[RemoteEntry] = field(default_factory=list)
    error: str = ""


def _context(model: dict[str, Any]) -> int:
    for name in _CONTEXT_FIELDS:
        value = model.get(name) or (model.get("meta") or {}).get("n_ctx_train" if name == "n_ctx" else name)
        if isinstance(value, int) and value > 0:
            return value
    return 0


def list_engine(engine: EngineConfig, api_key: str | None) -> EngineListing:
    """The models ``engine`` serves (network: call off the GUI thread)."""
    host, port = host_port(engine)
    try:
        models = OpenAIClient(engine, api_key).list_models()
    except RemoteError as exc:
        return EngineListing(engine, error=str(exc))
    return EngineListing(engine, [RemoteEntry(remote_key(engine.name, m["id"]), f"{m['id']} · {engine.name}",
                                              engine.name, f"{host}:{port}", _context(m)) for m in models])


def list_all(paths: AppPaths, secrets: Any) -> list[EngineListing]:
    """Every added engine's models (``secrets``: a SecretStore for the API keys)."""
    return [list_engine(e, secrets.get(key_name(e.name)) if e.has_key else None) for e in load_engines(paths)]


def open_remote(paths: AppPaths, secrets: Any, key: str, n_ctx: int = 0) -> RemoteRuntime:
    """The runtime for a remote model's key; RemoteError when its engine was removed."""
    parsed = parse_remote_key(key)
    engine = find_engine(paths, parsed[0]) if parsed else None
    if parsed is None or engine is None:
        raise RemoteError(f"The engine of {key.removeprefix(PREFIX)} is not among the engines added in Settings → "
                          "Engines.")
    return RemoteRuntime(engine, parsed[1], secrets.get(key_name(engine.name)) if engine.has_key else None, n_ctx)
