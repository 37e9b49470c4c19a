"""The engines the person added: name, base URL and an optional CA file, kept in engines.json;
their API keys live in the keyring (``engine:<name>``), never in the file."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.paths import AppPaths

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class EngineConfig:
    """One remote engine: ``url`` is its base URL, ending in ``/v1``."""

    name: str
    url: str
    ca_file: str = ""
    has_key: bool = False


def key_name(name: str) -> str:
    """The keyring entry of an engine's API key."""
    return f"engine:{name}"


def normalize_base_url(url: str) -> str:
    """``http(s)://host[:port][/path]`` as a base URL ending in ``/v1``; ValueError says what is wrong."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"The engine's address must start with http:// or https:// (not {parts.scheme}://).")
    if not parts.hostname:
        raise ValueError("The engine's address has no host name.")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"The engine's address has a bad port: {exc}.") from exc
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def host_port(config: EngineConfig) -> tuple[str, int]:
    """The engine's host and port (80/443 by default)."""
    parts = urlsplit(config.url)
    return str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)


def check_name(name: str) -> str:
    """A valid engine name, or ValueError."""
    if not NAME_RE.match(name.strip()):
        raise ValueError("An engine's name is 1-40 letters, digits, '.', '_' or '-', starting with a letter or "
                         "digit.")
    return name.strip()


def load_engines(paths: AppPaths) -> list[EngineConfig]:
    """The engines in engines.json (a damaged file reads as none, with a warning in the log)."""
    data = read_json(paths.engines_file, {})
    engines = data.get("engines") if isinstance(data, dict) else None
    if not isinstance(engines, list):
        if paths.engines_file.exists():
            logger.warning("engines.json is not readable: no remote engines")
        return []
    result = []
    for item in engines:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("url"), str):
            result.append(EngineConfig(item["name"], item["url"], str(item.get("ca_file") or ""),
                                       bool(item.get("has_key"))))
    return result


def save_engines(paths: AppPaths, engines: list[EngineConfig]) -> None:
    """Write engines.json atomically."""
    write_json_atomic(paths.engines_file, {"engines": [asdict(e) for e in engines]})


def find_engine(paths: AppPaths, name: str) -> EngineConfig | None:
    """The engine called ``name``."""
    return next((e for e in load_engines(paths) if e.name == name), None)
