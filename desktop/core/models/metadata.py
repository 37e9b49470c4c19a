"""What a local model file is: architecture, parameters, quantization, trained context, size,
chat template. Read from the GGUF header with :func:`desktop.core.models.gguf.read_gguf`, and cached on
disk keyed by path, size and modification time, so listing a library of many multi-GB files reads
each header once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from desktop.core.models.gguf import GGUFError, read_gguf
from desktop.core.system.atomic import read_json, write_json_atomic

CACHE_VERSION = 1


@dataclass(frozen=True)
class ModelMetadata:
    """A model file's description. ``problem`` is non-empty when the file cannot be used (then the
    other fields may be empty); it is the checker's sentence for a person."""

    architecture: str = ""
    parameters: int = 0
    quantization: str = ""
    context_length: int = 0
    size: int = 0
    chat_template: bool = False
    title: str = ""  # general.name
    problem: str = ""
    thinking: str = ""  # how the model thinks, from its chat template ("thinks · can switch off")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the cache file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata | None:
        """From the cache file; None when the record does not have the expected shape."""
        try:
            values = {f.name: data[f.name] for f in fields(cls)}
        except (KeyError, TypeError):
            return None
        defaults = cls()
        if any(type(values[name]) is not type(getattr(defaults, name)) for name in values):
            return None
        return cls(**values)


def format_parameters(n: int) -> str:
    """135_000_000 -> '135M', 7_241_732_096 -> '7.2B'; '' when unknown."""
    if n <= 0:
        return ""
    for limit, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= limit:
            value = n / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(n)


def read_metadata(path: Path, parts: Sequence[Path] = (),
                  describe_template: Callable[[str], str] | None = None) -> ModelMetadata:
    """Describe ``path`` (the first part of a split model; ``parts`` are all its parts, first
    included); ``describe_template`` says in a few words how a chat template makes the model
    think. Never raises for a bad file: the problem is reported in ``problem``."""
    all_parts = list(parts) or [path]
    try:
        size = sum(p.stat().st_size for p in all_parts)
    except OSError as exc:
        return ModelMetadata(problem=f"{path.name} cannot be read ({exc.strerror or exc})")
    try:
        info = read_gguf(path)
    except GGUFError as exc:
        return ModelMetadata(size=size, problem=str(exc))
    parameters = info.parameter_count
    for extra in all_parts[1:]:  # later parts of a split file hold the rest of the tensors
        try:
            parameters += read_gguf(extra).parameter_count
        except GGUFError:
            parameters = 0  # unknown rather than wrong
            break
    return ModelMetadata(architecture=info.architecture, parameters=parameters, quantization=info.quantization,
                         context_length=info.context_length or 0, size=size,
                         chat_template=bool(info.chat_template), title=info.name or "",
                         thinking=describe_template(info.chat_template) if describe_template and info.chat_template
                         else "")


def _identity(parts: Sequence[Path]) -> str:
    """Cache key: every part's absolute path, size and modification time."""
    keys = []
    for part in parts:
        st = part.stat()
        keys.append(f"{part.absolute()}|{st.st_size}|{st.st_mtime_ns}")
    return "+".join(keys)


class MetadataCache:
    """Model metadata by file identity, kept in a JSON file (or only in memory when ``file`` is
    None). Thread-safe; :meth:`save` writes only when something changed and drops records of
    files that are gone."""

    def __init__(self, file: Path | None = None, describe_template: Callable[[str], str] | None = None) -> None:
        self._describe = describe_template
        self._file = file
        self._lock = threading.Lock()
        data = read_json(file, {}) if file else {}
        records = data.get("models", {}) if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}
        self._records: dict[str, dict[str, Any]] = records if isinstance(records, dict) else {}
        self._used: set[str] = set()
        self._dirty = False
        self.reads = 0  # headers actually read (tests check the cache works)

    def get(self, path: Path, parts: Sequence[Path] = ()) -> ModelMetadata:
        """The metadata of ``path`` (and its split ``parts``), from the cache when the files did
        not change since they were read."""
        all_parts = list(parts) or [path]
        try:
            key = _identity(all_parts)
        except OSError:
            return read_metadata(path, all_parts, self._describe)  # reports the problem; nothing to cache
        with self._lock:
            record = self._records.get(key)
            self._used.add(key)
        cached = ModelMetadata.from_dict(record) if isinstance(record, dict) else None
        if cached is not None:
            return cached
        metadata = read_metadata(path, all_parts, self._describe)
        with self._lock:
            self.reads += 1
            self._records[key] = metadata.to_dict()
            self._dirty = True
        return metadata

    def save(self) -> None:
        """Write the cache file, keeping only records used since it was loaded or last saved,
        so records of deleted or changed files do not pile up."""
        with self._lock:
            stale = set(self._records) - self._used
            if stale:
                for key in stale:
                    del self._records[key]
                self._dirty = True
            if not self._dirty or self._file is None:
                self._used.clear()
                return
            data = {"version": CACHE_VERSION, "models": dict(self._records)}
            self._dirty = False
            self._used.clear()
        with contextlib.suppress(OSError):  # a cache: losing it costs a re-read, nothing else
            write_json_atomic(self._file, data)
