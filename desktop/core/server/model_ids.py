"""How the API names a model: its file name, without ``.gguf`` or a split's part number."""

from __future__ import annotations

from pathlib import Path

from desktop.core.library.model_library import split_parts


def served_id(path: Path) -> str:
    """A model's id in the API: its file name without ``.gguf`` (and without a split's part number)."""
    name = path.name.removesuffix(".gguf")
    if split_parts(path):
        name = name.rsplit("-", 3)[0] if name.count("-of-") else name
    return name
