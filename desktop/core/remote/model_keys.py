"""How Cove names a remote model: ``engine:NAME/MODEL`` in the model picker, the settings and the
stored conversation (a local model is named by its file's path)."""

from __future__ import annotations

PREFIX = "engine:"


def remote_key(engine: str, model: str) -> str:
    """The key of ``model`` on ``engine``."""
    return f"{PREFIX}{engine}/{model}"


def parse_remote_key(key: str) -> tuple[str, str] | None:
    """(engine, model) of a remote key, None for a local model's path."""
    if not key.startswith(PREFIX) or "/" not in key:
        return None
    engine, _, model = key[len(PREFIX):].partition("/")
    return (engine, model) if engine and model else None
