"""What the library knows of one model: its entry, where it came from, and the library's error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCE_LABELS: dict[str, str] = {
    "starter": "Starter (part of Cove)",
    "bundled": "Bundled with Cove",
    "folder": "Models folder",
    "opened": "Linked file",
    "hf_cache": "Hugging Face cache",
}


class LibraryError(Exception):
    """A library change that could not be made; the message is one sentence for a person."""


@dataclass(frozen=True)
class ModelEntry:
    """A model file Cove knows. ``source`` is one of :data:`SOURCE_LABELS`: 'starter', 'bundled',
    'folder' (the models folder), 'opened' (linked: remembered where it is) or 'hf_cache'.

    ``parts`` lists every file of a split model (``name-00001-of-00003.gguf`` ...), first part
    included; it is empty for a model in one file. ``size`` is all parts together.
    """

    path: Path
    name: str
    size: int
    source: str
    parts: tuple[Path, ...] = ()
    repo_id: str = ""  # the Hub repository, for a model in the Hugging Face cache

    @property
    def key(self) -> str:
        """Stable identity used in settings and conversations: the absolute path."""
        return str(self.path)

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file of the model on disk."""
        return self.parts or (self.path,)
