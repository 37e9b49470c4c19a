"""GGUF files for tests: a synthetic builder, a raw scanner and a metadata rewriter for real models.

* :func:`build_gguf` writes a small synthetic file (tensor data left as sparse zeros), with every
  field overridable, so each malformation can be produced on purpose.
* :func:`scan_gguf` walks the header, metadata and tensor table of a well-formed file and records
  where every field lies (byte offsets), so tests can corrupt a real model precisely.
* :func:`rewrite_metadata` copies a real model with metadata keys changed, added or removed:
  untouched key/value pairs and the tensor table are copied as raw bytes, the data section is
  re-padded to the alignment and the tensor data copied unchanged.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.models import gguf

__all__ = ["U8", "I8", "U16", "I16", "U32", "I32", "F32", "BOOL", "STR", "ARR", "U64", "I64", "F64",
           "Raw", "enc_str", "enc_value", "tensor_nbytes", "build_gguf", "arch",
           "KVField", "TensorField", "GGUFLayout", "scan_gguf", "rewrite_metadata", "copy_prefix",
           "patch_bytes"]

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
        U64: "Q", I64: "q", F64: "d"}
_SIZE = {t: struct.calcsize("<" + f) for t, f in _FMT.items()}


# ----------------------------------------------------------------------------- synthetic builder

@dataclass
class Raw:
    """Bytes written verbatim in place of an encoded value or string."""
    data: bytes


def enc_str(s: str | bytes | Raw) -> bytes:
    if isinstance(s, Raw):
        return s.data
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def enc_value(vtype: int, value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if vtype == STR:
        return enc_str(value)
    if vtype == ARR:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(enc_value(etype, v) for v in items)
    return struct.pack("<" + _FMT[vtype], value)


def tensor_nbytes(shape: tuple[int, ...], ggml_type: int) -> int:
    _, block, size = gguf.GGML_TYPES[ggml_type]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def build_gguf(path: Path, metadata: list[tuple[str | Raw, int, Any]] | None = None,
               tensors: list[tuple] | None = None, *, version: int = 3, alignment: int = 32,
               magic: bytes = b"GGUF", kv_count: int | None = None, tensor_count: int | None = None,
               size: int | None = None) -> Path:
    """Write a GGUF file. Tensors are (name, shape, ggml_type[, offset]); offsets default to packed.

    Tensor data is left as zeros (a sparse file); ``size`` overrides the final file size.
    """
    metadata = [("general.architecture", STR, "llama")] if metadata is None else metadata
    tensors = [("weight", (32,), 0)] if tensors is None else tensors
    out = bytearray(magic + struct.pack("<IQQ", version,
                                        len(tensors) if tensor_count is None else tensor_count,
                                        len(metadata) if kv_count is None else kv_count))
    for key, vtype, value in metadata:
        out += enc_str(key) + struct.pack("<I", vtype) + enc_value(vtype, value)
    end, next_offset = 0, 0
    for t in tensors:
        name, shape, ggml_type = t[:3]
        nbytes = tensor_nbytes(shape, ggml_type) if ggml_type in gguf.GGML_TYPES else 32
        offset = t[3] if len(t) > 3 else next_offset
        next_offset = offset + -(-nbytes // alignment) * alignment
        end = max(end, offset + nbytes)
        out += enc_str(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", ggml_type, offset)
    data_offset = -(-len(out) // alignment) * alignment if tensors else len(out)
    with open(path, "wb") as f:
        f.write(out)
        f.truncate(data_offset + end if size is None else size)
    return path


def arch(name: str = "llama") -> tuple[str, int, str]:
    return ("general.architecture", STR, name)


# ----------------------------------------------------------------------------- raw scanner

@dataclass
class KVField:
    """Where one metadata pair lies: [start, end) is the whole pair; the rest are field offsets.

    ``lengths`` holds the offsets of every u64 length inside the pair (key, string value, array
    count, and each string element of a string array); ``type_fields`` those of its u32 type ids.
    """
    key: str
    vtype: int
    start: int
    end: int
    type_pos: int
    value_pos: int
    elem_type: int | None = None
    lengths: list[int] = field(default_factory=list)
    type_fields: list[int] = field(default_factory=list)

    @property
    def raw_slice(self) -> slice:
        return slice(self.start, self.end)


@dataclass
class TensorField:
    """Where one tensor-table entry lies, and the offsets of its fields."""
    name: str
    start: int
    end: int
    n_dims_pos: int
    dim_pos: list[int]
    type_pos: int
    offset_pos: int


@dataclass
class GGUFLayout:
    """The byte layout of a file's header, metadata and tensor table."""
    version: int
    tensor_count: int
    kv_count: int
    kvs: list[KVField]
    tensors: list[TensorField]
    kv_end: int          # where the tensor table starts
    table_end: int       # where the padding before the data starts
    data_offset: int
    alignment: int
    head: bytes          # the file's bytes [0, data_offset)

    def kv(self, key: str) -> KVField:
        for entry in self.kvs:
            if entry.key == key:
                return entry
        raise KeyError(key)


def scan_gguf(path: str | os.PathLike[str]) -> GGUFLayout:
    """Record the position of every header, metadata and tensor-table field of a valid GGUF."""
    info = gguf.read_gguf(path)
    with open(path, "rb") as f:
        head = f.read(info.data_offset)
    pos = 0

    def u32() -> int:
        nonlocal pos
        (v,) = struct.unpack_from("<I", head, pos)
        pos += 4
        return v

    def u64() -> int:
        nonlocal pos
        (v,) = struct.unpack_from("<Q", head, pos)
        pos += 8
        return v

    def string(lengths: list[int]) -> bytes:
        nonlocal pos
        lengths.append(pos)
        n = u64()
        pos += n
        return head[pos - n:pos]

    version, tensor_count, kv_count = struct.unpack_from("<IQQ", head, 4)
    pos = 24
    kvs: list[KVField] = []
    for _ in range(kv_count):
        start, lengths, types = pos, [], []
        key = string(lengths).decode()
        types.append(pos)
        type_pos, vtype = pos, u32()
        value_pos, elem_type = pos, None
        if vtype == STR:
            string(lengths)
        elif vtype == ARR:
            types.append(pos)
            elem_type = u32()
            lengths.append(pos)
            count = u64()
            if elem_type == STR:
                for _ in range(count):
                    string(lengths)
            else:
                pos += count * _SIZE[elem_type]
        else:
            pos += _SIZE[vtype]
        kvs.append(KVField(key, vtype, start, pos, type_pos, value_pos, elem_type, lengths, types))
    kv_end = pos
    tensors: list[TensorField] = []
    for _ in range(tensor_count):
        start, lengths = pos, []
        name = string(lengths).decode()
        n_dims_pos, n_dims = pos, u32()
        dim_pos = [pos + 8 * i for i in range(n_dims)]
        pos += 8 * n_dims
        type_pos = pos
        pos += 4
        offset_pos = pos
        pos += 8
        tensors.append(TensorField(name, start, pos, n_dims_pos, dim_pos, type_pos, offset_pos))
    assert -(-pos // info.alignment) * info.alignment == info.data_offset, "scanner and read_gguf disagree"
    return GGUFLayout(version, tensor_count, kv_count, kvs, tensors, kv_end, pos, info.data_offset,
                      info.alignment, head)


# ----------------------------------------------------------------------------- copying real models

def _copy_range(f_in: Any, f_out: Any, offset: int, count: int) -> None:
    """Copy ``count`` bytes of f_in from ``offset`` to f_out's current position."""
    f_in.seek(offset)
    f_out.flush()
    if hasattr(os, "copy_file_range"):
        out_pos = f_out.tell()
        done = 0
        try:
            while done < count:
                n = os.copy_file_range(f_in.fileno(), f_out.fileno(), count - done,
                                       offset + done, out_pos + done)
                if n == 0:
                    break
                done += n
        except OSError:
            pass
        f_out.seek(out_pos + done)
        f_in.seek(offset + done)
        count -= done
    while count > 0:
        chunk = f_in.read(min(count, 1 << 22))
        if not chunk:
            break
        f_out.write(chunk)
        count -= len(chunk)


def copy_prefix(src: str | os.PathLike[str], dst: str | os.PathLike[str], n: int | None = None) -> Path:
    """dst = a real (not sparse, not linked) copy of the first ``n`` bytes of src (all if None)."""
    size = os.path.getsize(src)
    n = size if n is None else min(n, size)
    with open(src, "rb") as f_in, open(dst, "wb") as f_out:
        _copy_range(f_in, f_out, 0, n)
    return Path(dst)


def patch_bytes(path: str | os.PathLike[str], offset: int, data: bytes) -> Path:
    """Overwrite bytes of ``path`` at ``offset`` in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    return Path(path)


def rewrite_metadata(src: Path, dst: Path, changes: dict[str, tuple[int, object] | None], *,
                     alignment: int | None = None, layout: GGUFLayout | None = None) -> Path:
    """Copy the GGUF ``src`` to ``dst`` with metadata keys changed, added (at the end) or removed.

    ``changes`` maps a key to ``(value_type, value)`` (encoded like :func:`enc_value`, so
    ``Raw(bytes)`` writes a malformed value verbatim) or to ``None`` to remove it. Every other
    pair and the tensor table are copied byte for byte; the data section starts at the next
    multiple of ``alignment`` (default: a valid new ``general.alignment`` in ``changes``, else the
    source's) and the tensor data is copied unchanged. Removing a key that is absent raises KeyError.
    """
    layout = layout or scan_gguf(src)
    head = layout.head
    pairs: list[tuple[str, bytes]] = [(kv.key, head[kv.raw_slice]) for kv in layout.kvs]
    present = {key for key, _ in pairs}
    for key, change in changes.items():
        if change is None:
            if key not in present:
                raise KeyError(f"{key} is not in {src.name}")
            pairs = [(k, raw) for k, raw in pairs if k != key]
            continue
        vtype, value = change
        encoded = enc_str(key) + struct.pack("<I", vtype) + enc_value(vtype, value)
        if key in present:
            pairs = [(k, encoded if k == key else raw) for k, raw in pairs]
        else:
            pairs.append((key, encoded))
    if alignment is None:
        alignment = layout.alignment
        new = changes.get("general.alignment")
        if new is not None and new[0] == U32 and isinstance(new[1], int) and new[1] > 0 \
                and not new[1] & (new[1] - 1):
            alignment = new[1]
    out = bytearray(head[:8] + struct.pack("<QQ", layout.tensor_count, len(pairs)))
    for _key, raw in pairs:
        out += raw
    out += head[layout.kv_end:layout.table_end]
    out += bytes(-len(out) % alignment)
    size = os.path.getsize(src)
    with open(src, "rb") as f_in, open(dst, "wb") as f_out:
        f_out.write(out)
        _copy_range(f_in, f_out, layout.data_offset, size - layout.data_offset)
    return Path(dst)

