"""Bounded, pure-Python reader for GGUF model files.

``read_gguf`` checks a file's header, metadata and tensor table the way
llama.cpp's loader (``ggml/src/gguf.cpp`` and ``llama-model-loader``) does, so
a broken or foreign file is refused with a sentence a person can act on
instead of a crash inside llama.cpp.  The work is bounded by the file size:
no count read from the file is trusted before it is checked against the bytes
that remain, the file is read forward through a window of about 1 MiB, and
tensor data is never read.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from desktop.core.text.units import format_size

__all__ = ["GGUFError", "GGUFHeaderIncomplete", "ArraySummary", "TensorInfo", "GGUFInfo", "read_gguf",
           "read_gguf_header",
           "SUPPORTED_ARCHITECTURES", "GGML_TYPES", "VALUE_TYPE_NAMES"]


class GGUFError(ValueError):
    """A file Cove refuses to load; str(e) is a one-line message for a person that names the problem
    (and the file name)."""


class GGUFHeaderIncomplete(GGUFError):
    """``read_gguf_header`` was given fewer bytes than the header needs; ``needed`` is a lower bound
    for the prefix length to try next (the header may need more still)."""

    def __init__(self, name: str, have: int, needed: int) -> None:
        super().__init__(f"{name}: the first {have:,} bytes end inside the header (at least {needed:,} are needed)")
        self.have, self.needed = have, needed


# Architectures in LLM_ARCH_NAMES of llama.cpp as vendored by llama-cpp-python 0.3.36
# (src/llama-arch.cpp), minus "clip" (vision projectors only) and "(unknown)".
SUPPORTED_ARCHITECTURES: frozenset[str] = frozenset({
    "afmoe", "apertus", "arcee", "arctic", "arwkv7", "baichuan", "bailingmoe", "bailingmoe2",
    "bailingmoe3", "bert", "bitnet", "bloom", "chameleon", "chatglm", "codeshell", "cogvlm",
    "cohere2", "cohere2moe", "command-r", "dbrx", "deci", "deepseek", "deepseek2", "deepseek2-ocr",
    "deepseek32", "deepseek4", "dflash", "dots1", "dots3note", "dream", "eagle3", "ernie4_5",
    "ernie4_5-moe", "eurobert", "exaone", "exaone-moe", "exaone4", "falcon", "falcon-h1", "gemma",
    "gemma-embedding", "gemma2", "gemma3", "gemma3n", "gemma4", "gemma4-assistant", "glm-dsa",
    "glm4", "glm4moe", "glm5-next", "gpt-oss", "gpt2", "gptj", "gptneox", "granite", "granite_swa",
    "granitehybrid", "granitemoe", "graniteswitch", "grok", "grovemoe", "hrm_text", "hunyuan-dense",
    "hunyuan-moe", "hunyuan_vl", "hy_v3", "hy_v4", "internlm2", "jais", "jais2", "jamba",
    "jina-bert-v2", "jina-bert-v3", "kimi-k3", "kimi-linear", "laguna", "lfm2", "lfm2moe", "llada",
    "llada-moe", "llama", "llama-embed", "llama4", "maincoder", "mamba", "mamba2", "maple",
    "mellum", "mimo2", "minicpm", "minicpm3", "minimax-01", "minimax-m2", "minimax-m3", "mistral3",
    "mistral4", "modern-bert", "mpt", "muse-glimmer", "nanbeige", "nemotron", "nemotron_h",
    "nemotron_h_moe", "neo-bert", "nomic-bert", "nomic-bert-moe", "olmo", "olmo2", "olmoe",
    "openelm", "orion", "paddleocr", "pangu-embedded", "phi2", "phi3", "phimoe", "plamo", "plamo2",
    "plamo3", "plm", "pockettts", "qwen", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen35",
    "qwen35moe", "qwen3moe", "qwen3next", "qwen3tts", "qwen3vl", "qwen3vlmoe", "qwen4exp", "refact",
    "rnd1", "rwkv6", "rwkv6qwen2", "rwkv7", "seed_oss", "smallthinker", "smollm3", "spark2_5",
    "stablelm", "starcoder", "starcoder2", "step35", "t5", "t5encoder", "talkie",
    "wavtokenizer-dec", "xverse",
})

# ggml type id -> (name, block size in elements, block size in bytes); from ggml.c type_traits.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}

# llama_ftype (general.file_type) -> short human name, as in llama.h / llama-model-loader.cpp.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4",
    40: "Q1_0", 41: "Q2_0",
}
_FTYPE_GUESSED = 1024

# GGUF metadata value types: id -> (name, struct format or None for string/array).
_STRING, _ARRAY = 8, 9
VALUE_TYPE_NAMES: dict[int, str] = {
    0: "UINT8", 1: "INT8", 2: "UINT16", 3: "INT16", 4: "UINT32", 5: "INT32", 6: "FLOAT32",
    7: "BOOL", 8: "STRING", 9: "ARRAY", 10: "UINT64", 11: "INT64", 12: "FLOAT64",
}
_SCALAR_FORMATS: dict[int, str] = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f",
                                   7: "b", 10: "Q", 11: "q", 12: "d"}
_SCALARS = {t: struct.Struct("<" + f) for t, f in _SCALAR_FORMATS.items()}
_INTEGER_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11})

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HEADER = struct.Struct("<4sIQQ")

MAX_KEY_BYTES = 65535              # metadata key length cap
MAX_STRING_BYTES = 64 * 1024 * 1024  # metadata string value cap
MAX_ARRAY_ELEMENTS = 1 << 30       # GGUF_MAX_ARRAY_ELEMENTS in gguf.cpp
MAX_STORED_ARRAY = 64              # longer arrays are kept as ArraySummary
_MAX_SUMMARISED = 4096             # integer arrays up to this length also get a maximum
MAX_TENSOR_NAME = 63               # GGML_MAX_NAME - 1
MAX_DIMS = 4                       # GGML_MAX_DIMS
MAX_ELEMENTS = 1 << 62
DEFAULT_ALIGNMENT = 32
_WINDOW = 1 << 20                  # bytes read from the file at a time
_MIN_KV_BYTES = 8 + 1 + 4 + 1      # key length, 1-byte key, type, 1-byte value
_MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset


@dataclass(frozen=True)
class ArraySummary:
    """Stands in for a metadata array too long to keep element-wise."""
    elem_type: int
    count: int
    maximum: int | None = None  # for integer arrays of modest length

    @property
    def type_name(self) -> str:
        return VALUE_TYPE_NAMES.get(self.elem_type, str(self.elem_type))


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table; offset is relative to the data section."""
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    nbytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.ggml_type][0]


@dataclass(frozen=True)
class GGUFInfo:
    """What ``read_gguf`` learned about a valid model file."""
    path: Path
    version: int
    file_size: int
    alignment: int
    data_offset: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]

    def _int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        if isinstance(value, list):  # per-layer values, e.g. head_count_kv
            value = max((v for v in value if isinstance(v, int)), default=None)
        elif isinstance(value, ArraySummary):
            value = value.maximum
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def _arch_int(self, suffix: str) -> int | None:
        return self._int(f"{self.architecture}.{suffix}")

    @property
    def architecture(self) -> str:
        return self.metadata["general.architecture"]

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def head_count(self) -> int | None:
        return self._arch_int("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        return self._arch_int("attention.head_count_kv")

    @property
    def key_length(self) -> int | None:
        return self._arch_int("attention.key_length")

    @property
    def value_length(self) -> int | None:
        return self._arch_int("attention.value_length")

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def file_type(self) -> int | None:
        return self._int("general.file_type")

    @property
    def quantization(self) -> str:
        """Short name such as "Q4_K_M"; from general.file_type, else the commonest tensor type."""
        ft = self.file_type
        if ft is not None and (ft & ~_FTYPE_GUESSED) in FILE_TYPE_NAMES:
            return FILE_TYPE_NAMES[ft & ~_FTYPE_GUESSED]
        weights = [t for t in self.tensors if len(t.shape) >= 2] or list(self.tensors)
        return Counter(t.type_name for t in weights).most_common(1)[0][0]

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def vocab_size(self) -> int | None:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArraySummary):
            return tokens.count
        return len(tokens) if isinstance(tokens, list) else None


def _q(text: str, limit: int = 60) -> str:
    """Quote a key or tensor name from the file for a one-line message."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return f"'{shown}'" if shown.isprintable() else ascii(shown)


class _Reader:
    """Forward cursor over the file through a bounded read window.

    Positions are absolute file offsets; ``buf`` holds the bytes from ``base``.
    Every short read becomes a GGUFError naming what was being read.
    """

    def __init__(self, f: BinaryIO, size: int, name: str) -> None:
        self.f, self.end, self.name = f, size, name
        self.buf, self.base, self.pos = b"", 0, 0
        self.what = "the header"

    def fail(self, message: str) -> GGUFError:
        return GGUFError(f"{self.name}: {message}")

    def need(self, n: int) -> int:
        """Make bytes [pos, pos+n) available; return pos's index into ``buf``."""
        if n > self.end - self.pos:
            short = n - (self.end - self.pos)
            raise GGUFError(f"{self.name} is truncated: the file ends at byte {self.end:,} while reading "
                            f"{self.what} (needs {short:,} more byte{'' if short == 1 else 's'})")
        i = self.pos - self.base
        if i < 0 or i + n > len(self.buf):
            self.f.seek(self.pos)
            self.buf, self.base, i = self.f.read(max(n, _WINDOW)), self.pos, 0
            if len(self.buf) < n:  # the file shrank while we read it
                self.end = self.pos + len(self.buf)
                return self.need(n)
        return i

    def read(self, fmt: struct.Struct) -> Any:
        """One little-endian scalar."""
        i = self.need(fmt.size)
        (v,) = fmt.unpack_from(self.buf, i)
        self.pos += fmt.size
        return v

    def u32(self) -> int:
        return self.read(_U32)

    def u64(self) -> int:
        return self.read(_U64)

    def raw_string(self, cap: int, label: str) -> bytes:
        n = self.u64()
        if n > cap:
            raise self.fail(f"{label} claims to be {n:,} bytes long (the limit is {cap:,}); the file is corrupt")
        i = self.need(n)
        self.pos += n
        return self.buf[i:i + n]

    def text(self, cap: int, label: str) -> str:
        data = self.raw_string(cap, label)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{label} is not valid UTF-8 text") from None

    def skip_strings(self, count: int, label: str) -> None:
        """Step over ``count`` strings, checking each length without decoding."""
        unpack, pos, end = _U64.unpack_from, self.pos, self.end
        buf, base, limit = self.buf, self.base, self.base + len(self.buf)
        for i in range(count):
            if pos + 8 > limit or pos < base:
                self.pos, self.what = pos, f"element {i} of {label}"
                self.need(8)
                buf, base, limit = self.buf, self.base, self.base + len(self.buf)
            (n,) = unpack(buf, pos - base)
            pos += 8
            if n > MAX_STRING_BYTES or n > end - pos:
                self.pos, self.what = pos, f"element {i} of {label}"
                if n > MAX_STRING_BYTES:
                    raise self.fail(f"element {i} of {label} claims to be {n:,} bytes long; the file is corrupt")
                self.need(n)
            pos += n
        self.pos = pos


def _read_value(r: _Reader, vtype: int, key: str) -> Any:
    label = f"the value of {_q(key)}"
    if vtype == _STRING:
        return r.text(MAX_STRING_BYTES, label)
    if vtype == _ARRAY:
        return _read_array(r, key)
    fmt = _SCALARS.get(vtype)
    if fmt is None:
        raise r.fail(f"metadata {_q(key)} has unknown value type {vtype}; the file is corrupt or too new")
    v = r.read(fmt)
    return bool(v) if vtype == 7 else v


def _read_array(r: _Reader, key: str) -> Any:
    etype = r.u32()
    count = r.u64()
    label = f"the array {_q(key)}"
    if etype == _ARRAY:
        raise r.fail(f"metadata {_q(key)} is an array of arrays, which GGUF does not allow")
    if etype != _STRING and etype not in _SCALARS:
        raise r.fail(f"metadata {_q(key)} is an array of unknown value type {etype}; the file is corrupt or too new")
    size = 8 if etype == _STRING else _SCALARS[etype].size  # minimum bytes per element
    remain = r.end - r.pos
    if count > MAX_ARRAY_ELEMENTS or count * size > remain:
        raise GGUFError(f"{r.name} is truncated or corrupt: {label} declares {count:,} elements, which need at "
                        f"least {format_size(count * size)}, but only {format_size(remain)} remain before the "
                        "file ends")
    if etype == _STRING:
        if count <= MAX_STORED_ARRAY:
            return [r.text(MAX_STRING_BYTES, f"element {i} of {label}") for i in range(count)]
        r.skip_strings(count, label)
        return ArraySummary(etype, count)
    if count <= MAX_STORED_ARRAY or (etype in _INTEGER_TYPES and count <= _MAX_SUMMARISED):
        i = r.need(count * size)
        values = struct.unpack_from(f"<{count}{_SCALAR_FORMATS[etype]}", r.buf, i)
        r.pos += count * size
        if count > MAX_STORED_ARRAY:
            return ArraySummary(etype, count, max(values))
        return [bool(v) for v in values] if etype == 7 else list(values)
    r.pos += count * size  # checked against the file size above
    return ArraySummary(etype, count)


def _read_metadata(r: _Reader, kv_count: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Read ``kv_count`` pairs; also return each key's stored value type."""
    metadata: dict[str, Any] = {}
    types: dict[str, int] = {}
    for i in range(kv_count):
        r.what = f"metadata key #{i}"
        key = r.text(MAX_KEY_BYTES, f"metadata key #{i}")
        if not key:
            raise r.fail(f"metadata key #{i} is empty; the file is corrupt")
        if key in metadata:
            raise r.fail(f"metadata key {_q(key)} appears twice; the file is corrupt")
        r.what = f"the metadata value of {_q(key)}"
        types[key] = r.u32()
        metadata[key] = _read_value(r, types[key], key)
    return metadata, types


def _check_alignment(r: _Reader, metadata: dict[str, Any], types: dict[str, int]) -> int:
    if "general.alignment" not in metadata:
        return DEFAULT_ALIGNMENT
    value = metadata["general.alignment"]
    if types["general.alignment"] != 4:
        raise r.fail(f"general.alignment must be a UINT32 but is a "
                     f"{VALUE_TYPE_NAMES.get(types['general.alignment'], '?')}; the file is corrupt")
    if value == 0 or value & (value - 1):
        raise r.fail(f"general.alignment is {value}, which is not a power of two; the file is corrupt")
    return value


def _check_architecture(r: _Reader, metadata: dict[str, Any], later_part_ok: bool = False) -> None:
    arch = metadata.get("general.architecture")
    split_no = metadata.get("split.no")
    if arch is None and later_part_ok and isinstance(split_no, int) and split_no > 0:
        return  # parts after the first of a split model carry only the split.* keys
    if arch is None:
        raise r.fail("general.architecture is missing, so this is not a model llama.cpp can load")
    if not isinstance(arch, str):
        raise r.fail("general.architecture is not text; the file is corrupt")
    if arch == "clip":
        raise GGUFError(f"{r.name} is a vision projector (mmproj) file, not a language model")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise GGUFError(f"{r.name} uses architecture {_q(arch)}, which this version of Cove's llama.cpp "
                        "does not support")


def _read_tensor_info(r: _Reader, index: int, seen: set[str]) -> tuple[str, tuple[int, ...], int, int, int]:
    r.what = f"the name of tensor #{index}"
    name = r.text(MAX_KEY_BYTES, f"the name of tensor #{index}")
    if len(name.encode()) > MAX_TENSOR_NAME:
        raise r.fail(f"tensor name {_q(name, 40)} is longer than llama.cpp allows ({MAX_TENSOR_NAME} bytes)")
    if name in seen:
        raise r.fail(f"tensor {_q(name)} appears twice; the file is corrupt")
    seen.add(name)
    r.what = f"the shape of tensor {_q(name)}"
    n_dims = r.u32()
    if not 1 <= n_dims <= MAX_DIMS:
        raise r.fail(f"tensor {_q(name)} has {n_dims} dimensions (must be 1 to {MAX_DIMS}); the file is corrupt")
    shape = tuple(r.u64() for _ in range(n_dims))
    n_elements = 1
    for axis, dim in enumerate(shape):
        if dim == 0 or dim >= 1 << 63:
            shown = dim if dim < 1 << 63 else dim - (1 << 64)
            raise r.fail(f"tensor {_q(name)} has size {shown} in dimension {axis}; the file is corrupt")
        n_elements *= dim
        if n_elements > MAX_ELEMENTS:
            raise r.fail(f"tensor {_q(name)} has an impossible shape {list(shape)} (too many elements)")
    r.what = f"the type of tensor {_q(name)}"
    ggml_type = r.u32()
    if ggml_type not in GGML_TYPES:
        raise r.fail(f"tensor {_q(name)} has unknown data type {ggml_type}; it may need a newer llama.cpp")
    type_name, block, block_bytes = GGML_TYPES[ggml_type]
    if shape[0] % block:
        raise r.fail(f"tensor {_q(name)} of type {type_name} has rows of {shape[0]} elements, "
                     f"not a multiple of the block size {block}; the file is corrupt")
    r.what = f"the offset of tensor {_q(name)}"
    offset = r.u64()
    return name, shape, ggml_type, offset, n_elements // block * block_bytes


def _check_layout(r: _Reader, tensors: list[TensorInfo], data_offset: int, alignment: int) -> None:
    """Mirror gguf.cpp (tensors packed in order, each padded) and the loader's bounds check."""
    expected, prev, beyond = 0, "", None
    for t in tensors:
        if t.offset % alignment:
            raise r.fail(f"tensor {_q(t.name)} starts at offset {t.offset:,}, which is not a multiple "
                         f"of the alignment {alignment}; the file is corrupt")
        if t.offset < expected:
            raise r.fail(f"the data of tensor {_q(t.name)} overlaps tensor {_q(prev)}; the file is corrupt")
        if t.offset > expected:
            raise r.fail(f"tensor {_q(t.name)} starts at offset {t.offset:,} but llama.cpp expects it at "
                         f"{expected:,} (tensors must be packed in order); the file is corrupt")
        if beyond is None and data_offset + t.offset + t.nbytes > r.end:
            beyond = t
        expected += -(-t.nbytes // alignment) * alignment
        prev = t.name
    if beyond is not None:
        needed = data_offset + tensors[-1].offset + tensors[-1].nbytes
        raise GGUFError(f"{r.name} is truncated: it is {r.end:,} bytes long but should be {needed:,} "
                        f"({format_size(needed)}); the data of tensor {_q(beyond.name)} onwards is missing "
                        "(was the download interrupted?)")


def _parse(r: _Reader, later_part_ok: bool = False) -> tuple[int, int, int, dict[str, Any], tuple[TensorInfo, ...]]:
    """Check the whole header; return version, alignment, data offset, metadata and tensors.
    ``later_part_ok``: accept a later part of a split model (no architecture of its own)."""
    i = r.need(min(4, r.end))
    magic = r.buf[i:i + 4]
    if not b"GGUF".startswith(magic):
        raise GGUFError(f"{r.name} is not a GGUF model file (it starts with {magic!r}; expected b'GGUF')")
    i = r.need(_HEADER.size)
    _, version, tensor_count, kv_count = _HEADER.unpack_from(r.buf, i)
    r.pos = _HEADER.size
    if version not in (2, 3):
        if version and not version & 0xFFFF:
            raise GGUFError(f"{r.name} is a big-endian GGUF file, which Cove cannot load")
        raise r.fail(f"GGUF version {version} is not supported (Cove reads versions 2 and 3)")
    remain = r.end - r.pos
    if kv_count * _MIN_KV_BYTES > remain:
        raise r.fail(f"metadata count {kv_count:,} is impossible for a file of {format_size(r.end)} "
                     "(the file is corrupt or truncated)")
    if tensor_count * _MIN_TENSOR_BYTES > remain - kv_count * _MIN_KV_BYTES:
        raise r.fail(f"tensor count {tensor_count:,} is impossible for a file of {format_size(r.end)} "
                     "(the file is corrupt or truncated)")
    metadata, types = _read_metadata(r, kv_count)
    alignment = _check_alignment(r, metadata, types)
    _check_architecture(r, metadata, later_part_ok)
    if tensor_count == 0:
        raise r.fail("the file contains no tensors (weights), so it is not a usable model")
    seen: set[str] = set()
    tensors = [TensorInfo(*_read_tensor_info(r, i, seen)) for i in range(tensor_count)]
    data_offset = -(-r.pos // alignment) * alignment
    if data_offset > r.end:
        raise GGUFError(f"{r.name} is truncated: the file ends at byte {r.end:,} before its tensor data "
                        f"starts (byte {data_offset:,})")
    _check_layout(r, tensors, data_offset, alignment)
    return version, alignment, data_offset, metadata, tuple(tensors)


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate the GGUF file at ``path`` and describe it; raise GGUFError if Cove should not load it."""
    p = Path(path)
    name = p.name or str(p)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise GGUFError(f"{name} does not exist") from None
    except OSError as e:
        raise GGUFError(f"{name} cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise GGUFError(f"{name} is a folder, not a model file")
    if not stat.S_ISREG(mode):
        raise GGUFError(f"{name} is not a regular file, so it cannot be a model file")
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise GGUFError(f"{name} is empty (0 bytes), not a model file")
            version, alignment, data_offset, metadata, tensors = _parse(_Reader(f, size, name))
    except PermissionError:
        raise GGUFError(f"{name} cannot be opened: permission denied") from None
    except OSError as e:  # e.g. an I/O error on a failing disk or network share
        raise GGUFError(f"{name} cannot be read ({e.strerror or e})") from None
    return GGUFInfo(path=p, version=version, file_size=size, alignment=alignment,
                    data_offset=data_offset, metadata=metadata, tensors=tensors)


class _PrefixReader(_Reader):
    """A reader over the first bytes of a file of ``size`` bytes (a download's header, fetched by
    range): reading past the prefix, but not past the file's end, raises GGUFHeaderIncomplete."""

    def __init__(self, data: bytes, size: int, name: str) -> None:
        super().__init__(io.BytesIO(data), size, name)
        self.have = len(data)

    def need(self, n: int) -> int:
        if n <= self.end - self.pos and self.pos + n > self.have:
            raise GGUFHeaderIncomplete(self.name, self.have, self.pos + n)
        return super().need(n)


def read_gguf_header(data: bytes, file_size: int, name: str) -> GGUFInfo:
    """Describe a GGUF file from its first bytes ``data`` and its full size, without its tensor data.

    Checks everything ``read_gguf`` checks that does not need the data (header, metadata, tensor
    table, and that the tensors fit in ``file_size``). A later part of a split model (``split.no``
    > 0, no architecture of its own) is accepted. Raises GGUFHeaderIncomplete when ``data`` ends
    before the header does (fetch more and call again), GGUFError when the file is unusable.
    """
    if file_size <= 0:
        raise GGUFError(f"{name} is empty (0 bytes), not a model file")
    if len(data) > file_size:
        raise GGUFError(f"{name}: {len(data):,} bytes were given for a file of {file_size:,} bytes")
    version, alignment, data_offset, metadata, tensors = _parse(_PrefixReader(data, file_size, name),
                                                                later_part_ok=True)
    return GGUFInfo(path=Path(name), version=version, file_size=file_size, alignment=alignment,
                    data_offset=data_offset, metadata=metadata, tensors=tensors)
