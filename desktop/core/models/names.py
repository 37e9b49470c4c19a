"""What a file name in a Hub repository says: is it safe to write, which quantization, which split.

Nothing here touches the network or the disk: these are rules over names, shared by the Hub
client (which refuses hostile names in a listing), the download code, the download pane and the
local library (which lists a split model through its first part).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Generic, Protocol, TypeVar

__all__ = ["safe_relative_path", "quantization", "split_group", "split_part_names", "is_later_part",
           "is_projector", "NamedFile", "ModelChoice", "group_files", "MAX_NAME_BYTES"]

MAX_NAME_BYTES = 1024  # longer than any real Hub path; refuses pathological names
_FORBIDDEN = set('<>:"|?*\\')  # characters Windows cannot store in a name (and the backslash)
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$", re.IGNORECASE)
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q[1-8](?:_[0-9A-Z]{1,3}){1,2}|BF16|FP?16|FP?32|MXFP4(?:_MOE)?|TQ[12]_0)"
                    r"(?![A-Za-z0-9])", re.IGNORECASE)


def safe_relative_path(name: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside the folder it is joined to, on every platform.

    Raises ValueError (saying why) for empty names, absolute paths (``/x``, ``C:\\x``, ``\\\\host\\share``),
    ``..`` or ``.`` parts, empty parts, backslashes, control characters (NUL included), characters or
    device names Windows refuses, parts ending in a dot or space, and names over 1 KiB.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("the file name is empty")
    shown = ascii(name) if len(name) <= 80 else ascii(name[:80]) + "..."
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ValueError(f"the file name {shown} is too long")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"the file name {shown} contains control characters")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"the file name {shown} is an absolute path")
    bad = sorted(_FORBIDDEN.intersection(name))
    if bad:
        raise ValueError(f"the file name {shown} contains {' '.join(bad)}, which is not allowed in a file name")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"the file name {shown} has an empty, '.' or '..' part, which could leave the models "
                             "folder")
        if part.endswith((".", " ")) or part.startswith(" "):
            raise ValueError(f"the file name {shown} has a part that begins with a space or ends with a dot or space")
        if _WINDOWS_DEVICES.match(part):
            raise ValueError(f"the file name {shown} uses the reserved device name {part!r}")
    return PurePosixPath(name)


def quantization(filename: str) -> str:
    """The quantization a GGUF file name announces ("Q4_K_M", "Q8_0", "F16", "IQ3_XS"...); "" if none.

    The file's own name wins over its folder's; of several matches the last one counts
    ("Llama-3.2-1B-Q4_K_M" → "Q4_K_M"). ``UD-Q4_K_XL`` (Unsloth dynamic) reads as "Q4_K_XL".
    """
    path = PurePosixPath(filename)
    for text in (path.name, str(path.parent)):
        found = _QUANT.findall(text)
        if found:
            quant = found[-1].upper()
            return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)
    return ""


def split_group(filename: str) -> tuple[str, int, int] | None:
    """(stem, part number, part count) for ``dir/name-00001-of-00003.gguf``; None for a single file."""
    match = _SPLIT.match(filename)
    if match is None:
        return None
    index, count = int(match["index"]), int(match["count"])
    if not 1 <= index <= count:
        return None
    return match["stem"], index, count


def split_part_names(filename: str) -> tuple[str, ...] | None:
    """Every part's name, in order, when ``filename`` is the first part of a split model
    (``x-00001-of-00003.gguf`` -> the three names, the extension spelt as given); None otherwise."""
    split = split_group(filename)
    if split is None or split[1] != 1:
        return None
    stem, _, count = split
    return tuple(f"{stem}-{i:05d}-of-{count:05d}{filename[-5:]}" for i in range(1, count + 1))


def is_later_part(filename: str) -> bool:
    """True for part 2, 3, ... of a split model (a model is listed through its first part)."""
    split = split_group(filename)
    return split is not None and split[1] != 1


def is_projector(filename: str) -> bool:
    """True for a vision projector (``mmproj-*.gguf``): not a model to chat with on its own."""
    return "mmproj" in PurePosixPath(filename).name.lower()


class NamedFile(Protocol):
    """A file of a listing, as these rules need it (``desktop.core.hub.client.RemoteFile`` is one)."""

    @property
    def filename(self) -> str: ...

    @property
    def size(self) -> int: ...


F = TypeVar("F", bound=NamedFile)


@dataclass(frozen=True)
class ModelChoice(Generic[F]):
    """One downloadable model: a single GGUF file, or all parts of a split one (in order).

    ``name`` is the file to load (the first part for a split model); ``size`` the bytes of all parts.
    """

    name: str
    quant: str
    parts: tuple[F, ...]
    size: int
    expected_parts: int = 1

    @property
    def split(self) -> bool:
        return self.expected_parts > 1

    @property
    def complete(self) -> bool:
        """False when the repository lacks some parts of a split model (it cannot be loaded)."""
        return len(self.parts) == self.expected_parts


def group_files(files: Iterable[F]) -> list[ModelChoice[F]]:
    """The models among a repository's GGUF files, smallest first: split parts grouped as one model,
    vision projectors left out."""
    singles: list[ModelChoice[F]] = []
    groups: dict[tuple[str, int], dict[int, F]] = {}
    for file in files:
        if is_projector(file.filename):
            continue
        split = split_group(file.filename)
        if split is None:
            singles.append(ModelChoice(file.filename, quantization(file.filename), (file,), file.size))
        else:
            stem, index, count = split
            groups.setdefault((stem, count), {})[index] = file
    for (stem, count), parts in groups.items():
        ordered = tuple(parts[i] for i in sorted(parts))
        first = f"{stem}-00001-of-{count:05d}.gguf"
        singles.append(ModelChoice(first, quantization(stem + ".gguf"), ordered, sum(p.size for p in ordered),
                                   expected_parts=count))
    return sorted(singles, key=lambda c: (c.size, c.name))
