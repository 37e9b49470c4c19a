"""A corpus of malformed and hostile GGUF files through Cove's own model path.

Every file goes through :func:`desktop.core.engine.loader.prepare_model`, the path the window and
``cove models import`` use: the Python check first, then the quarantine probe (a child process)
for files that pass it. This test process plays the app: a file that crashes llama.cpp must crash
only a probe child. Each file must be refused with a one-line message that names it and the
problem, or be marked broken by the probe, or really work (the probe loaded it and generated).

The corpus (>= 300 files, written one at a time and deleted after its check):

* each class of malformation, synthetic and applied to the real starter model: bad magic or
  version, counts or lengths beyond the file, unknown value types, nested arrays, bad alignment,
  tensors outside the file, unsupported architecture, and hostile hyperparameters that pass the
  format check (``llama.block_count`` 30000 aborts raw llama.cpp with SIGABRT);
* the real model truncated at 64 offsets from 0 to its full size;
* 160 seeded random mutations of the real model's header, metadata and tensor table.

The same nastiest files then go through the real window and through ``cove models import``.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desktop.core.engine.loader import ModelFileError, prepare_model
from desktop.core.models import gguf
from desktop.core.system.atomic import read_json
from desktop.core.system.paths import app_paths
from tests.gui.conftest import ask
from tests.helpers.gguf_builder import (
    ARR,
    F32,
    F64,
    I32,
    STR,
    U8,
    U32,
    U64,
    GGUFLayout,
    Raw,
    arch,
    build_gguf,
    copy_prefix,
    enc_str,
    patch_bytes,
    rewrite_metadata,
    scan_gguf,
)
from tests.helpers.report import report

MUTATIONS = 160
TRUNCATIONS = 64
MUTATION_SEED = 20250301
PROBE_TIMEOUT = 60.0
WORKERS = 2

Maker = Callable[[Path], object]


@dataclass
class Case:
    """One corpus file: ``make(dst)`` writes it; ``expect`` lists fragments one of which the
    refusal message must contain (empty: any message naming the file); ``must_refuse`` means the
    Python check alone must refuse it (a format error, not a question for llama.cpp)."""

    name: str
    kind: str
    make: Maker
    expect: tuple[str, ...] = ()
    must_refuse: bool = True
    never_accept: bool = True


@dataclass
class Outcome:
    case: Case
    status: str  # "refused", "broken", "accepted" or "error"
    message: str = ""
    attempts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def layout(starter_model: Path) -> GGUFLayout:
    return scan_gguf(starter_model)


def _u64(head: bytes, pos: int) -> int:
    return struct.unpack_from("<Q", head, pos)[0]


def _u32(head: bytes, pos: int) -> int:
    return struct.unpack_from("<I", head, pos)[0]


def real_patch(real: Path, patches: list[tuple[int, bytes]]) -> Maker:
    """A full copy of the real model with bytes overwritten at absolute offsets."""
    def make(dst: Path) -> None:
        copy_prefix(real, dst)
        for offset, data in patches:
            patch_bytes(dst, offset, data)
    return make


def real_rewrite(real: Path, layout: GGUFLayout, changes: dict, **kwargs) -> Maker:
    def make(dst: Path) -> None:
        rewrite_metadata(real, dst, changes, layout=layout, **kwargs)
    return make


def synthetic(*args, **kwargs) -> Maker:
    def make(dst: Path) -> None:
        build_gguf(dst, *args, **kwargs)
    return make


def raw_bytes(data: bytes) -> Maker:
    def make(dst: Path) -> None:
        dst.write_bytes(data)
    return make


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def llama_meta(extra: list | None = None) -> list:
    """A plausible llama metadata set for synthetic files."""
    return [arch("llama"), ("general.name", STR, "synthetic"), ("llama.block_count", U32, 1),
            ("llama.context_length", U32, 128), ("llama.embedding_length", U32, 32),
            ("llama.attention.head_count", U32, 4)] + (extra or [])


# ----------------------------------------------------------------------------- (a) classes

def class_cases(real: Path, L: GGUFLayout) -> list[Case]:
    head, size = L.head, real.stat().st_size
    last, first = L.tensors[-1], L.tensors[0]
    tokens, types, merges = L.kv("tokenizer.ggml.tokens"), L.kv("tokenizer.ggml.token_type"), L.kv("tokenizer.ggml.merges")
    langs, name_kv, tmpl = L.kv("general.languages"), L.kv("general.name"), L.kv("tokenizer.chat_template")
    blocks = L.kv("llama.block_count")
    nested = Raw(struct.pack("<IQ", ARR, 2) + struct.pack("<IQ", U8, 1) + b"\x01" + struct.pack("<IQ", U8, 0))
    c: list[Case] = []

    def add(kind: str, name: str, make: Maker, expect: tuple[str, ...] = (), **kw) -> None:
        c.append(Case(f"{kind}-{name}", kind, make, expect, **kw))

    # 1. bad magic or version
    k, magic = "magic-version", ("not a GGUF model file",)
    for i, m in enumerate((b"GGUE", b"\0\0\0\0", b"GGML", b"PK\x03\x04", b"FUGG")):
        add(k, f"syn-magic{i}", synthetic(magic=m), magic)
    for v, frag in ((0, "version 0"), (1, "version 1"), (4, "version 4"), (2**31, "version"), (3 << 24, "big-endian")):
        add(k, f"syn-version{v}", synthetic(version=v), (frag,))
    add(k, "real-version99", real_patch(real, [(4, u32(99))]), ("version 99",))
    add(k, "real-version1", real_patch(real, [(4, u32(1))]), ("version 1",))
    add(k, "real-version-max", real_patch(real, [(4, u32(2**32 - 1))]), ("version",))
    add(k, "real-big-endian", real_patch(real, [(4, struct.pack(">I", 3))]), ("big-endian",))
    add(k, "real-magic-lower", real_patch(real, [(0, b"gguf")]), magic)
    add(k, "real-magic-zero", real_patch(real, [(0, bytes(4))]), magic)
    add(k, "text-file", raw_bytes(b"These are my notes, not a model.\n" * 40), magic)

    # 2. counts or lengths beyond the file
    k, beyond = "beyond-file", ("impossible", "truncated", "claims to be", "declares")
    add(k, "syn-kv-count", synthetic(kv_count=10**15), ("metadata count",))
    add(k, "syn-kv-count-max", synthetic(kv_count=2**64 - 1), ("metadata count",))
    add(k, "syn-tensor-count", synthetic(tensor_count=2**63), ("tensor count",))
    add(k, "syn-tensor-count-1000", synthetic(tensor_count=1000), beyond)
    add(k, "syn-string", synthetic([arch(), ("general.name", STR, Raw(u64(5000) + b"abc"))], []), beyond)
    add(k, "syn-key", synthetic([arch(), (Raw(u64(2**40) + b"k"), U8, 1)]), beyond)
    add(k, "syn-array-count", synthetic([arch(), ("a", ARR, Raw(struct.pack("<IQ", F32, 10**9)))]), beyond)
    add(k, "syn-string-array", synthetic([arch(), ("t", ARR, Raw(struct.pack("<IQ", STR, 100) + enc_str("a") * 9))], []),
        beyond)
    add(k, "real-tensor-count", real_patch(real, [(8, u64(2**62))]), ("tensor count",))
    add(k, "real-kv-count", real_patch(real, [(16, u64(10**12))]), ("metadata count",))
    add(k, "real-kv-count-plus1", real_patch(real, [(16, u64(L.kv_count + 1))]), ())
    add(k, "real-tensor-count-plus1", real_patch(real, [(8, u64(L.tensor_count + 1))]), ())
    add(k, "real-template-length", real_patch(real, [(tmpl.lengths[1], u64(2**40))]), beyond)
    add(k, "real-name-length", real_patch(real, [(name_kv.lengths[1], u64(size))]), beyond)
    add(k, "real-tokens-count", real_patch(real, [(tokens.lengths[1], u64(10**9))]), beyond)
    add(k, "real-token-length", real_patch(real, [(tokens.lengths[1000], u64(2**33))]), beyond)
    add(k, "real-tensor-name-length", real_patch(real, [(last.start, u64(2**50))]), beyond)
    add(k, "real-key-length", real_patch(real, [(blocks.lengths[0], u64(2**45))]), beyond)

    # 3. unknown value types
    k, unknown = "unknown-type", ("unknown value type",)
    for t in (13, 14, 255, 2**31, 2**32 - 1):
        add(k, f"syn-type{t}", synthetic([arch(), ("x", t, Raw(bytes(8)))]), unknown)
    for t in (13, 77):
        add(k, f"syn-elem{t}", synthetic([arch(), ("x", ARR, Raw(struct.pack("<IQ", t, 1) + bytes(8)))]), unknown)
    add(k, "real-name-type", real_patch(real, [(name_kv.type_pos, u32(13))]), unknown)
    add(k, "real-blocks-type", real_patch(real, [(blocks.type_pos, u32(200))]), unknown)
    add(k, "real-tokens-elem", real_patch(real, [(tokens.type_fields[1], u32(42))]), unknown)
    add(k, "real-types-elem", real_patch(real, [(types.type_fields[1], u32(2**32 - 1))]), unknown)
    add(k, "real-template-type", real_patch(real, [(tmpl.type_pos, u32(0xDEAD))]), unknown)

    # 4. nested arrays
    k, arrays = "nested-array", ("array of arrays",)
    for n in (0, 1, 3):
        add(k, f"syn-count{n}", synthetic([arch(), ("x", ARR, Raw(struct.pack("<IQ", ARR, n) + struct.pack("<IQ", U8, 0) * n))]),
            arrays)
    add(k, "syn-deep", synthetic([arch(), ("x", ARR, Raw(struct.pack("<IQ", ARR, 1) + struct.pack("<IQ", ARR, 1)
                                                          + struct.pack("<IQ", U8, 0)))]), arrays)
    add(k, "real-tokens", real_patch(real, [(tokens.type_fields[1], u32(ARR))]), arrays)
    add(k, "real-token-type", real_patch(real, [(types.type_fields[1], u32(ARR))]), arrays)
    add(k, "real-merges", real_patch(real, [(merges.type_fields[1], u32(ARR))]), arrays)
    add(k, "real-languages", real_patch(real, [(langs.type_fields[1], u32(ARR))]), arrays)
    add(k, "real-added-key", real_rewrite(real, L, {"general.nested": (ARR, nested)}), arrays)
    add(k, "real-replaced-key", real_rewrite(real, L, {"general.languages": (ARR, nested)}), arrays)

    # 5. bad alignment
    k, align = "alignment", ("alignment",)
    for v in (0, 3, 48, 2**31 + 1):
        add(k, f"syn-{v}", synthetic([arch(), ("general.alignment", U32, v)]), ("not a power of two",))
    add(k, "syn-u64", synthetic([arch(), ("general.alignment", U64, 32)]), ("must be a UINT32",))
    add(k, "syn-string", synthetic([arch(), ("general.alignment", STR, "32")]), ("must be a UINT32",))
    add(k, "syn-offset16", synthetic(tensors=[("w", (32,), 0, 16)]), ("not a multiple of the alignment",))
    for v in (0, 3, 48):
        add(k, f"real-{v}", real_rewrite(real, L, {"general.alignment": (U32, v)}), ("not a power of two",))
    add(k, "real-u64", real_rewrite(real, L, {"general.alignment": (U64, 32)}), ("must be a UINT32",))
    add(k, "real-i32", real_rewrite(real, L, {"general.alignment": (I32, 32)}), ("must be a UINT32",))
    add(k, "real-1024", real_rewrite(real, L, {"general.alignment": (U32, 1024)}, alignment=32), align + ("truncated",))
    add(k, "real-2g", real_rewrite(real, L, {"general.alignment": (U32, 2**31)}, alignment=32), align + ("truncated",))
    add(k, "real-unaligned-offset", real_patch(real, [(L.tensors[5].offset_pos, u64(_u64(head, L.tensors[5].offset_pos) + 8))]),
        align)

    # 6. tensors outside the file
    k, outside = "tensor-outside", ("truncated", "offset", "overlaps", "impossible shape", "expects it")
    add(k, "syn-offset-far", synthetic(tensors=[("w", (32,), 0, 2**40)], size=4096), outside)
    add(k, "syn-data-cut", synthetic(tensors=[("a", (32,), 0), ("b", (64, 64), 0)], size=300), outside)
    add(k, "syn-data-start", synthetic(tensors=[("a", (32,), 0)], size=110), outside)
    add(k, "syn-gap", synthetic(tensors=[("a", (32,), 0, 0), ("b", (32,), 0, 256)]), outside)
    add(k, "syn-overlap", synthetic(tensors=[("a", (64,), 0, 0), ("b", (32,), 0, 128), ("c", (32,), 0, 128)]), outside)
    add(k, "syn-huge-dims", synthetic(tensors=[("w", (2**32, 2**31), 0, 0)], size=4096), outside)
    add(k, "real-last-offset", real_patch(real, [(last.offset_pos, u64(2**40))]), outside)
    add(k, "real-first-offset", real_patch(real, [(first.offset_pos, u64(size))]), outside)
    add(k, "real-last-dim", real_patch(real, [(last.dim_pos[0], u64(_u64(head, last.dim_pos[0]) * 4))]), outside)
    add(k, "real-first-dim", real_patch(real, [(first.dim_pos[-1], u64(_u64(head, first.dim_pos[-1]) * 2))]), outside)
    q41 = next(t for t in L.tensors if _u32(head, t.type_pos) == 3)
    add(k, "real-q41-as-f32", real_patch(real, [(q41.type_pos, u32(0))]), outside)  # F32: 6.4x the bytes
    add(k, "real-cut-1", lambda dst: copy_prefix(real, dst, size - 1), outside)
    add(k, "real-mid-offset", real_patch(real, [(L.tensors[100].offset_pos, u64(2**63))]), outside)

    # 7. unsupported architecture
    k, arch_msg = "architecture", ("architecture",)
    for i, a in enumerate(("notreal", "LLAMA", "llama\0", "", "x" * 300)):
        add(k, f"syn-{i}", synthetic([arch(a)]), arch_msg)
    add(k, "syn-clip", synthetic([arch("clip")]), ("vision projector",))
    add(k, "syn-missing", synthetic([("general.name", STR, "x")]), arch_msg)
    add(k, "syn-u32", synthetic([("general.architecture", U32, 1)]), arch_msg)
    for a in ("notreal", "llama2", "gpt5", "Llama"):
        add(k, f"real-{a}", real_rewrite(real, L, {"general.architecture": (STR, a)}), arch_msg)
    add(k, "real-clip", real_rewrite(real, L, {"general.architecture": (STR, "clip")}), ("vision projector",))
    add(k, "real-removed", real_rewrite(real, L, {"general.architecture": None}), arch_msg)
    add(k, "real-f64", real_rewrite(real, L, {"general.architecture": (F64, 1.0)}), arch_msg)

    # 8. hostile hyperparameters: well-formed GGUF, so llama.cpp (in the probe) must judge them
    k = "hostile"
    hostile: dict[str, dict] = {
        "block-count-30000": {"llama.block_count": (U32, 30000)},  # SIGABRT in raw llama.cpp
        "block-count-0": {"llama.block_count": (U32, 0)},
        "block-count-31": {"llama.block_count": (U32, 31)},
        "block-count-max": {"llama.block_count": (U32, 2**32 - 1)},
        "head-count-0": {"llama.attention.head_count": (U32, 0)},
        "head-count-kv-7": {"llama.attention.head_count_kv": (U32, 7)},
        "embedding-1": {"llama.embedding_length": (U32, 1)},
        "context-max": {"llama.context_length": (U32, 2**32 - 1)},
        "feed-forward-0": {"llama.feed_forward_length": (U32, 0)},
        "rope-dims-0": {"llama.rope.dimension_count": (U32, 0)},
        "eos-huge": {"tokenizer.ggml.eos_token_id": (U32, 2**31)},
        "epsilon-nan": {"llama.attention.layer_norm_rms_epsilon": (F32, float("nan"))},
        "tokenizer-model": {"tokenizer.ggml.model": (STR, "nonsense")},
        "no-tokens": {"tokenizer.ggml.tokens": None},
        "per-layer-heads": {"llama.attention.head_count": (ARR, (U32, [9] * 3000))},
    }
    for name, changes in hostile.items():
        add(k, name, real_rewrite(real, L, changes), (), must_refuse=False, never_accept=name == "block-count-30000")
    # output_norm.weight F32 -> Q4_0: a well-formed file (the data even fits) that aborts llama.cpp
    add(k, "mutated-tensor-type", real_patch(real, [(last.type_pos, u32(2))]), (), must_refuse=False)
    add(k, "syn-minimal-llama", synthetic(llama_meta(), [("token_embd.weight", (32, 8), 0)]), (), must_refuse=False)
    return c


# ----------------------------------------------------------------------------- (b) truncations

def truncation_offsets(L: GGUFLayout, size: int) -> list[int]:
    """64 distinct offsets in [0, size): dense over the header and table, then across the data."""
    head = [0, 1, 3, 4, 7, 8, 23, 24, 25, 40, 100, 1_000, 10_000, 100_000, 500_000, 1_000_000,
            L.kv_end - 1, L.kv_end, L.kv_end + 1, L.table_end - 1, L.data_offset - 1, L.data_offset,
            L.data_offset + 1, L.data_offset + 32]
    offsets = set(head) | {size - 1}
    rest, extra = TRUNCATIONS - len(offsets), 0
    while len(offsets) < TRUNCATIONS:  # spread the rest evenly over the tensor data
        offsets = set(head) | {size - 1} | {L.data_offset + (size - L.data_offset) * (i + 1) // (rest + extra + 1)
                                            for i in range(rest + extra)}
        extra += 1
    offsets = sorted(offsets)
    assert len(offsets) == TRUNCATIONS and offsets[-1] < size, len(offsets)
    return offsets


def truncation_cases(real: Path, L: GGUFLayout) -> list[Case]:
    size = real.stat().st_size
    return [Case(f"truncated-{n}", "truncation", lambda dst, n=n: copy_prefix(real, dst, n),
                 ("truncated", "is empty", "not a GGUF"))
            for n in truncation_offsets(L, size)]


# ----------------------------------------------------------------------------- (c) mutations

def _lengths(L: GGUFLayout, rng: random.Random) -> int:
    group = rng.choice(("key", "string", "count", "element", "tensor-name"))
    if group == "key":
        return rng.choice(L.kvs).lengths[0]
    if group == "string":
        return rng.choice([kv for kv in L.kvs if kv.vtype == STR]).lengths[1]
    if group == "count":
        return rng.choice([kv for kv in L.kvs if kv.vtype == ARR]).lengths[1]
    if group == "element":
        kv = rng.choice([kv for kv in L.kvs if kv.vtype == ARR and kv.elem_type == STR and len(kv.lengths) > 2])
        return rng.choice(kv.lengths[2:])
    return rng.choice(L.tensors).start


def mutate(L: GGUFLayout, rng: random.Random, kind: str) -> list[tuple[int, bytes]]:
    """Byte patches (offset, bytes) inside [0, data_offset) of the real model."""
    head = L.head
    if kind == "flip":
        out = []
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(L.data_offset)
            new = rng.choice((head[pos] ^ 1 << rng.randrange(8), rng.randrange(256), 0, 0xFF))
            out.append((pos, bytes([new])))
        return out
    if kind == "header":
        return [(rng.randrange(24), bytes([rng.randrange(256)])) for _ in range(rng.randint(1, 3))]
    if kind == "length":
        pos = _lengths(L, rng)
        orig = _u64(head, pos)
        new = rng.choice((0, 1, orig + 1, max(orig - 1, 0), orig * 2, orig + rng.randint(2, 1000), (1 << 32) + orig,
                          1 << 63, (1 << 64) - 1, rng.getrandbits(64), rng.randrange(100)))
        return [(pos, u64(new % (1 << 64)))]
    if kind == "type":
        group = rng.choice(("kv", "elem", "ggml", "dims"))
        if group == "kv":
            pos = rng.choice(L.kvs).type_pos
        elif group == "elem":
            pos = rng.choice([kv for kv in L.kvs if kv.vtype == ARR]).type_fields[1]
        else:
            t = rng.choice(L.tensors)
            pos = t.type_pos if group == "ggml" else t.n_dims_pos
        new = rng.choice((*range(13), 13, 14, 255, 1 << 16, 1 << 31, (1 << 32) - 1, *gguf.GGML_TYPES))
        return [(pos, u32(new))]
    if kind == "tensor":
        t = rng.choice(L.tensors)
        pos = rng.choice((*t.dim_pos, t.offset_pos))
        orig = _u64(head, pos)
        new = rng.choice((orig * 2, 1, orig + 32, max(orig - 32, 0), 1 << 40, rng.getrandbits(64), orig // 2))
        return [(pos, u64(new % (1 << 64)))]
    if kind == "value":  # a scalar metadata value: passes the format check, tests llama.cpp
        kv = rng.choice([kv for kv in L.kvs if kv.vtype not in (STR, ARR)])
        n = kv.end - kv.value_pos
        orig = int.from_bytes(head[kv.value_pos:kv.end], "little")
        if kv.vtype in (F32, F64):
            fmt = "<f" if kv.vtype == F32 else "<d"
            data = struct.pack(fmt, rng.choice((float("nan"), float("inf"), 0.0, -1.0, 1e30, 1e-30)))
        else:
            new = rng.choice((0, 1, orig + 1, orig * 1000, (1 << 8 * n) - 1, rng.getrandbits(8 * n), 1 << (8 * n - 1)))
            data = (new % (1 << 8 * n)).to_bytes(n, "little")
        return [(kv.value_pos, data)]
    if kind == "string":  # a byte of a metadata string value (architecture, tokenizer, template...)
        kv = rng.choice([kv for kv in L.kvs if kv.vtype == STR])
        start, n = kv.lengths[1] + 8, _u64(head, kv.lengths[1])
        pos = start + rng.randrange(max(n, 1))
        return [(pos, bytes([rng.choice((head[pos] ^ 1 << rng.randrange(8), rng.randrange(256), 0x7B, 0x25, 0))]))]
    if kind == "element":  # an element of the vocabulary arrays
        kv = rng.choice([L.kv("tokenizer.ggml.tokens"), L.kv("tokenizer.ggml.merges"), L.kv("tokenizer.ggml.token_type")])
        if kv.elem_type == STR:
            i = rng.randrange(2, len(kv.lengths))
            start, n = kv.lengths[i] + 8, _u64(head, kv.lengths[i])
            pos = start + rng.randrange(max(n, 1))
            return [(pos, bytes([rng.randrange(256)]))]
        pos = kv.lengths[1] + 8 + 4 * rng.randrange(_u64(head, kv.lengths[1]))
        return [(pos, struct.pack("<i", rng.choice((-1, 0, 7, 1 << 30, rng.randrange(-(1 << 31), 1 << 31)))))]
    raise ValueError(kind)


MUTATION_KINDS = ("flip", "header", "length", "type", "tensor", "value", "string", "element")


def mutation_cases(real: Path, L: GGUFLayout, n: int = MUTATIONS, seed: int = MUTATION_SEED) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind = MUTATION_KINDS[i % len(MUTATION_KINDS)]
        patches = mutate(L, rng, kind)
        cases.append(Case(f"mutation-{i:03d}-{kind}", "mutation", real_patch(real, patches), (),
                          must_refuse=False, never_accept=False))
    return cases


# ----------------------------------------------------------------------------- running one case

def message_problems(message: str, path: Path, expect: tuple[str, ...]) -> list[str]:
    problems = []
    if not message.strip():
        problems.append("empty message")
    if path.name not in message:
        problems.append("does not name the file")
    if not message.isprintable() or "Traceback" in message:
        problems.append("not one printable line / a traceback")
    if expect and not any(e in message for e in expect):
        problems.append(f"names none of {expect}")
    return problems


def run_case(case: Case, workdir: Path) -> Outcome:
    """Write the file, put it through prepare_model with its own data folder, delete it."""
    folder = workdir / case.name
    folder.mkdir()
    path = folder / f"{case.name}.gguf"
    started = time.monotonic()
    try:
        case.make(path)
        paths = app_paths(folder / "cove").ensure()
        try:
            prepare_model(path, paths, n_threads=1, probe_timeout=PROBE_TIMEOUT)
        except ModelFileError as exc:
            message = str(exc)
            probes = read_json(paths.probe_file, {}) if paths.probe_file.exists() else {}
            attempts = [a for v in probes.values() for a in v.get("attempts", [])]
            status = "broken" if probes else "refused"
            out = Outcome(case, status, message, attempts)
            out.problems = message_problems(message, path, case.expect if status == "refused" else ())
            if status == "broken" and case.must_refuse:
                out.problems.append("passed the Python check although it is malformed")
        except Exception as exc:  # noqa: BLE001 - any other exception is a failure of the app's path
            import traceback
            out = Outcome(case, "error", f"{type(exc).__name__}: {exc}", problems=[traceback.format_exc()])
        else:
            out = Outcome(case, "accepted", "works")
            probes = read_json(paths.probe_file, {})
            out.attempts = [a for v in probes.values() for a in v.get("attempts", [])]
            if case.must_refuse or case.never_accept:
                out.problems.append("was accepted")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out.seconds = time.monotonic() - started
    return out


def probe_reason(attempt: str) -> str:
    """'weight repacking on: crashed (SIGABRT): ...' -> 'crashed (SIGABRT)'."""
    reason = attempt.split(": ", 1)[-1]
    if reason.startswith("llama.cpp could not load"):
        return "llama.cpp refused to load it"
    if reason.startswith("exited with status"):
        return reason.split(":")[0]
    if reason.startswith("crashed"):
        return reason.split(":")[0]
    return reason[:60]


# ----------------------------------------------------------------------------- the corpus test

@pytest.mark.timeout(900)  # about 100 files, each through a probe child process: a minute or more
def test_malformed_corpus_is_refused_or_marked_broken_never_fatal(starter_model: Path, layout: GGUFLayout,
                                                                  tmp_path: Path) -> None:
    cases = class_cases(starter_model, layout) + truncation_cases(starter_model, layout) \
        + mutation_cases(starter_model, layout)
    kinds = Counter(c.kind for c in cases)
    assert len(cases) >= 300, kinds
    assert all(n >= 8 for kind, n in kinds.items() if kind not in ("truncation", "mutation")), kinds
    assert kinds["truncation"] == TRUNCATIONS and kinds["mutation"] >= 150
    assert len({c.name for c in cases}) == len(cases)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda c: run_case(c, tmp_path), cases))
    elapsed = time.monotonic() - started

    status = Counter(o.status for o in outcomes)
    reasons = Counter(probe_reason(a) for o in outcomes if o.status == "broken" for a in o.attempts)
    by_kind = {kind: dict(Counter(o.status for o in outcomes if o.case.kind == kind)) for kind in kinds}
    slowest = max(outcomes, key=lambda o: o.seconds)
    summary = (f"{len(outcomes)} files, {status['refused']} refused with a message, {status['broken']} marked "
               f"broken by the probe, {status['accepted']} working, 0 app deaths")
    print(f"\nmalformed GGUF corpus in {elapsed:.0f} s: {summary}")
    print("by class:", by_kind)
    print("probe reasons (per attempt):", dict(reasons))
    print(f"slowest: {slowest.case.name} {slowest.seconds:.1f} s ({slowest.status})")
    for o in outcomes:
        if o.status == "broken" or (o.status == "accepted" and o.case.kind != "mutation"):
            print(f"  {o.case.name}: {o.status}: {o.message[:160]}")

    bad = [f"{o.case.name} [{o.status}] {o.message[:300]!r}: {'; '.join(p[:2000] for p in o.problems)}"
           for o in outcomes if o.problems or o.status == "error"]
    assert not bad, "\n".join(bad)
    # This process is the app: had any file killed it, we would not be here.
    report("malformed GGUF", summary)
    sigabrt = next(o for o in outcomes if o.case.name == "hostile-block-count-30000")
    assert sigabrt.status in ("refused", "broken"), sigabrt
    assert sum(o.status == "refused" for o in outcomes if o.case.kind == "truncation") == TRUNCATIONS
    assert status["refused"] + status["broken"] + status["accepted"] == len(outcomes)


# ----------------------------------------------------------------------------- the nastiest files

NASTIEST = ("hostile-block-count-30000", "tensor-outside-real-last-offset", "nested-array-real-tokens",
            "hostile-mutated-tensor-type", "hostile-epsilon-nan", "unknown-type-real-tokens-elem",
            "magic-version-real-version99", "truncated-half")


def nasty_file(name: str, real: Path, L: GGUFLayout, folder: Path) -> Path:
    """Write the corpus file called ``name`` into ``folder``."""
    path = folder / f"{name}.gguf"
    if name == "truncated-half":
        copy_prefix(real, path, real.stat().st_size // 2)
        return path
    [case] = [c for c in class_cases(real, L) if c.name == name]
    case.make(path)
    return path


@pytest.fixture
def nasty_folder(tmp_path: Path):
    """A folder for full-size corpus files, emptied after the test (they are ~100 MB each)."""
    folder = tmp_path / "nasty"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_nastiest_files_through_the_window_give_a_banner_and_the_model_still_answers(
        qtbot, cove, starter_model: Path, layout: GGUFLayout, nasty_folder: Path) -> None:
    from desktop.core.conversations.store import COMPLETE

    loaded = cove.controller.model_path
    for name in NASTIEST:
        path = nasty_file(name, starter_model, layout, nasty_folder)
        with qtbot.waitSignal(cove.controller.problem, timeout=90_000) as blocker:
            cove.window.open_model_file(str(path))
        message = blocker.args[0]
        assert path.name in message and message.isprintable() and "Traceback" not in message, message
        assert cove.window.banner_box.isVisible() and path.name in cove.window.banner.text()
        # The model that was loaded stays loaded: the window never loaded the bad file in-process.
        qtbot.waitUntil(lambda: cove.controller.model_ready, timeout=10_000)
        assert cove.controller.model_path == loaded
        assert cove.window.isVisible()
        assert not cove.paths.crash_marker.exists()
        path.unlink()
    _id, status, _stats = ask(qtbot, cove, "Say hi.")
    assert status == COMPLETE
    assert cove.window.chat_view.message_widgets()[-1].text.strip()


# ----------------------------------------------------------------------------- cove models import

CLI_CASES = ("hostile-block-count-30000", "tensor-outside-real-last-offset", "nested-array-real-tokens",
             "hostile-mutated-tensor-type", "magic-version-real-version99", "architecture-real-notreal",
             "alignment-real-3", "beyond-file-real-tokens-count", "unknown-type-real-name-type", "truncated-half",
             "hostile-no-tokens")


def test_cove_models_import_refuses_hostile_files_with_one_line_and_exit_1(
        starter_model: Path, layout: GGUFLayout, nasty_folder: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    files = [nasty_file(name, starter_model, layout, nasty_folder) for name in CLI_CASES]
    text = nasty_folder / "notes.gguf"
    text.write_text("not a model\n")
    empty = nasty_folder / "empty.gguf"
    empty.write_bytes(b"")
    folder = nasty_folder / "folder.gguf"
    folder.mkdir()
    files += [text, empty, folder, nasty_folder / "missing.gguf"]
    env = dict(os.environ, COVE_BASEDIR=str(base))

    def run(item: tuple[int, Path]) -> subprocess.CompletedProcess:
        i, path = item
        link = ["--link"] if i % 3 == 0 else []  # remembering in place must refuse just the same
        return subprocess.run([sys.executable, "-m", "desktop", "models", "import", str(path), *link],
                              capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(run, enumerate(files)))
    failures = []
    for path, result in zip(files, results):
        lines = result.stderr.splitlines()
        ok = (result.returncode == 1 and len(lines) == 1 and lines[0].startswith("cove: ")
              and path.name in lines[0] and "Traceback" not in result.stderr and not result.stdout)
        if not ok:
            failures.append(f"{path.name}: exit {result.returncode}, stdout {result.stdout!r}, stderr {result.stderr!r}")
        print(f"{path.name}: exit {result.returncode}: {result.stderr.strip()}")
    assert not failures, "\n".join(failures)
    paths = app_paths(base)
    assert not list(paths.models_dir.iterdir())
    library = paths.library_file.read_text() if paths.library_file.exists() else ""
    assert not any(p.name in library for p in files), library
