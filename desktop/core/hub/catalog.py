"""The curated catalog: open models worth running on a laptop, shown before any Hub search.

The list lives in ``resources/catalog.json`` (the package ``desktop.resources``, shipped in the
bundle). Entries name a repository and its recommended file; the size there is approximate, for
display: the repository's listing gives the exact size and sha256 when the person picks one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files

from desktop.core.models.names import ModelChoice, quantization, safe_relative_path

__all__ = ["CatalogEntry", "load_catalog", "parse_catalog", "find_choice", "CatalogError"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_FIELDS = ("repo_id", "file", "size", "license", "family", "description", "params")


class CatalogError(ValueError):
    """The catalog file is malformed (a packaging mistake, caught by the tests)."""


@dataclass(frozen=True)
class CatalogEntry:
    """One recommended model: ``file`` is the file to load (the first part of a split model)."""

    repo_id: str
    file: str
    size: int
    license: str
    family: str
    description: str
    params: str

    @property
    def quant(self) -> str:
        return quantization(self.file)

    @property
    def title(self) -> str:
        """A short name for a list: "Llama 3B (Q4_K_M)"."""
        return f"{self.family} {self.params} ({self.quant or 'GGUF'})"


def _entry(index: int, item: object) -> CatalogEntry:
    if not isinstance(item, dict):
        raise CatalogError(f"catalog entry {index} is not an object")
    missing = [key for key in _FIELDS if key not in item]
    if missing:
        raise CatalogError(f"catalog entry {index} lacks {', '.join(missing)}")
    entry = CatalogEntry(**{key: item[key] for key in _FIELDS})
    if not _REPO_ID.match(str(entry.repo_id)):
        raise CatalogError(f"catalog entry {index}: {entry.repo_id!r} is not a repository id (owner/name)")
    try:
        safe_relative_path(entry.file)
    except ValueError as exc:
        raise CatalogError(f"catalog entry {index}: {exc}") from None
    if not entry.file.lower().endswith(".gguf"):
        raise CatalogError(f"catalog entry {index}: {entry.file!r} is not a GGUF file")
    if not isinstance(entry.size, int) or isinstance(entry.size, bool) or entry.size <= 0:
        raise CatalogError(f"catalog entry {index}: size must be a positive number of bytes")
    for key in ("license", "family", "description", "params"):
        if not isinstance(getattr(entry, key), str) or not getattr(entry, key).strip():
            raise CatalogError(f"catalog entry {index}: {key} must be non-empty text")
    return entry


def parse_catalog(text: str) -> list[CatalogEntry]:
    """The entries of a catalog JSON document; raises CatalogError when it is malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"the catalog is not valid JSON ({exc})") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise CatalogError("the catalog has no list of models")
    entries = [_entry(i, item) for i, item in enumerate(models)]
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        if (entry.repo_id, entry.file) in seen:
            raise CatalogError(f"the catalog lists {entry.repo_id}/{entry.file} twice")
        seen.add((entry.repo_id, entry.file))
    return entries


def load_catalog() -> list[CatalogEntry]:
    """The shipped catalog, in its order (small models first within each family)."""
    return parse_catalog((files("desktop.resources") / "catalog.json").read_text(encoding="utf-8"))


def find_choice(entry: CatalogEntry, choices: Iterable[ModelChoice]) -> ModelChoice | None:
    """The model in a repository listing (``group_files`` of ``HubClient.repo``) that ``entry`` recommends."""
    return next((choice for choice in choices if choice.name == entry.file), None)
