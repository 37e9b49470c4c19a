"""The fit estimate against llama.cpp's own buffer sizes, the verdict, and the refusal before loading.

The MiB figures are what llama.cpp 0.3.36's loader printed for these models on this build
(``verbose=True``): KV buffer, compute buffer.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from desktop.core.models import fit
from desktop.core.models.fit import RUNS_WELL, TIGHT, WILL_NOT_FIT, choose_gpu_layers, estimate, verdict
from desktop.core.models.gguf import GGUFInfo, TensorInfo, read_gguf
from desktop.core.system.hardware import CPUInfo, HardwareInfo, MemoryInfo

MIB = 1 << 20
AVX2 = frozenset({"avx", "avx2", "fma", "f16c"})


def synthetic(arch: str, layers: int, metadata: dict, tensors: tuple[TensorInfo, ...] = ()) -> GGUFInfo:
    meta = {"general.architecture": arch, f"{arch}.block_count": layers,
            "tokenizer.ggml.tokens": ["a"] * 10, **{f"{arch}.{k}": v for k, v in metadata.items()}}
    return GGUFInfo(Path("synthetic.gguf"), 3, 1, 32, 0, meta, tensors)


def gemma3_270m(**extra: object) -> GGUFInfo:
    """Gemma 3 270M's attention metadata (the real file is tested in tests/e2e/test_fit_accuracy.py)."""
    return synthetic("gemma3", 18, {"embedding_length": 640, "attention.head_count": 4,
                                    "attention.head_count_kv": 1, "attention.key_length": 256,
                                    "attention.value_length": 256, "attention.sliding_window": 512,
                                    "feed_forward_length": 2048, **extra})


def machine(available: int, gpu_free: int = 0, unified: bool = False) -> SimpleNamespace:
    return SimpleNamespace(memory=MemoryInfo(available * 2, available), gpu_free=lambda: gpu_free,
                           unified_memory=lambda: unified, cpu=SimpleNamespace(features=AVX2))


def test_kv_cache_of_smollm2_matches_llama_cpp(starter_model: Path) -> None:
    info = read_gguf(starter_model)
    assert estimate(info, 2048).kv_cache == 45 * MIB       # "CPU KV buffer size = 45.00 MiB"
    assert estimate(info, 8192).kv_cache == 180 * MIB
    assert estimate(info, 2000).kv_cache == 45 * MIB       # n_ctx is padded to 256
    assert estimate(info, 2048, cache_type="q8_0").kv_cache == pytest.approx(23.91 * MIB, abs=0.01 * MIB)
    assert estimate(info, 2048, cache_type="q4_0").kv_cache == pytest.approx(45 * MIB * 18 / 64, abs=1)


def test_weights_are_the_tensor_bytes_and_repacking_copies_some(starter_model: Path) -> None:
    info = read_gguf(starter_model)
    data = sum(t.nbytes for t in info.tensors)
    assert estimate(info, 2048).weights == data
    assert estimate(info, 2048, repack=True, cpu_features=AVX2).weights == data  # Q4_1 is never repacked
    q4k = TensorInfo("blk.0.attn_output.weight", (1024, 640), 12, 0, 368640)
    odd = TensorInfo("blk.0.ffn_down.weight", (1024, 644), 12, 0, 370944)  # rows not a multiple of 8
    embd = TensorInfo("token_embd.weight", (640, 1024), 12, 0, 368640)    # get_rows: never repacked
    model = synthetic("llama", 1, {"embedding_length": 640, "attention.head_count": 4}, (q4k, odd, embd))
    plain = estimate(model, 512).weights
    assert estimate(model, 512, repack=True, cpu_features=AVX2).weights == plain + q4k.nbytes
    assert estimate(model, 512, repack=True, cpu_features=frozenset({"sse4_2"})).weights == plain


def test_compute_matches_llama_cpps_attention_step(starter_model: Path) -> None:
    info = read_gguf(starter_model)
    e = estimate(info, 8192)
    # llama.cpp reserves 166.38 MiB at 8192 (the attention step) and the CPU backend's work buffer
    # holds softmax(KQ) as f16 for KQV: 8192 x 512 x 9 heads x 2 bytes = 72 MiB.
    assert e.compute == pytest.approx((166.38 + 72) * MIB, rel=0.01)
    # At 2048 llama.cpp reserves 99.38 MiB, mostly logits for 512 rows that Cove never asks for.
    small = estimate(info, 2048)
    assert small.compute < 99.38 * MIB
    assert small.reserved >= (99.38 * MIB - small.compute) + 512 * 49152 * 4  # + llama-cpp-python's scores
    assert estimate(info, 8192, flash_attn=True).compute < e.compute / 4
    assert estimate(info, 8192, n_used=40).compute < e.compute / 50


def test_sliding_window_layers_follow_llama_cpp() -> None:
    info = gemma3_270m()
    # llama.cpp: layers 5, 11 and 17 are global; the SWA cache is full-size by default (swa_full).
    swa, n_swa = fit._swa_layers(info, 18)
    assert n_swa == 512 and [i for i, s in enumerate(swa) if not s] == [5, 11, 17]
    assert estimate(info, 2048).kv_cache == 36 * MIB        # 6.00 + 30.00 MiB
    assert estimate(info, 8192).kv_cache == 144 * MIB       # 24.00 + 120.00 MiB
    # Without swa_full: GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) = 1024 cells for the 15 SWA layers.
    small = estimate(info, 8192, swa_full=False).kv_cache
    assert small == 3 * 2 * 256 * 8192 * 2 + 15 * 2 * 256 * 1024 * 2
    pattern = gemma3_270m(**{"attention.sliding_window_pattern": [True, False] * 9})
    assert estimate(pattern, 2048, swa_full=False).kv_cache == 9 * 2 * 256 * 2048 * 2 + 9 * 2 * 256 * 1024 * 2


def test_per_layer_head_count_kv() -> None:
    base = {"embedding_length": 512, "attention.head_count": 8, "attention.key_length": 64,
            "attention.value_length": 64}
    uniform = synthetic("llama", 4, {**base, "attention.head_count_kv": 2})
    varying = synthetic("llama", 4, {**base, "attention.head_count_kv": [2, 0, 4, 2]})  # layer 1: no attention
    one = 2 * 64 * 2 * 512 * 2  # K+V, 64-wide heads, 2 heads, 512 cells, f16
    assert estimate(uniform, 512).kv_cache == 4 * one
    assert estimate(varying, 512).kv_cache == (1 + 0 + 2 + 1) * one


def test_gpu_offload_splits_weights_and_cache() -> None:
    tensors = tuple(TensorInfo(f"blk.{i}.ffn_up.weight", (64, 64), 0, 0, 1000) for i in range(4)) + (
        TensorInfo("token_embd.weight", (64, 100), 0, 0, 500), TensorInfo("output.weight", (64, 100), 0, 0, 700))
    info = synthetic("llama", 4, {"embedding_length": 64, "attention.head_count": 4}, tensors)
    cpu_only = estimate(info, 512)
    assert cpu_only.on_gpu == 0 and cpu_only.weights == 5200
    half = estimate(info, 512, n_gpu_layers=2)        # blocks 2 and 3
    every = estimate(info, 512, n_gpu_layers=-1)      # all blocks and the output layer
    assert half.on_gpu > 2000 and half.total < cpu_only.total
    assert every.on_gpu > half.on_gpu and every.total < half.total
    assert every.total - every.overhead - every.compute == 500  # only the token embeddings stay
    assert choose_gpu_layers(info, 512, gpu_free=every.on_gpu * 2) == 5
    assert choose_gpu_layers(info, 512, gpu_free=int(half.on_gpu / 0.9) + 1) >= 2
    assert choose_gpu_layers(info, 512, gpu_free=10) == 0


def test_verdict_thresholds() -> None:
    e = fit.FitEstimate(weights=600, kv_cache=200, compute=100, overhead=100, total=1000, on_gpu=0, n_ctx=512)
    assert verdict(e, machine(2000))[0] == RUNS_WELL       # 50 %
    assert verdict(e, machine(1250))[0] == TIGHT           # 80 %
    label, reason = verdict(e, machine(1050))              # 95 %
    assert label == WILL_NOT_FIT and "available" in reason
    assert verdict(e, machine(0))[0] == TIGHT              # unknown: not refused
    gpu = fit.FitEstimate(100, 0, 0, 0, 100, on_gpu=1000, n_ctx=512)
    assert verdict(gpu, machine(10_000, gpu_free=2000))[0] == RUNS_WELL
    assert verdict(gpu, machine(10_000, gpu_free=1050))[0] == TIGHT
    assert verdict(gpu, machine(10_000, gpu_free=900))[0] == WILL_NOT_FIT
    assert verdict(gpu, machine(1000, unified=True))[0] == WILL_NOT_FIT  # Apple: the GPU's share is RAM


def test_a_model_that_will_not_fit_is_refused_before_the_probe(starter_model: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.core.engine import loader as model_loader
    from desktop.core.system.paths import app_paths

    def no_probe(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a model that does not fit must not be loaded, not even by the probe")

    monkeypatch.setattr(model_loader, "probe_model", no_probe)
    small = HardwareInfo(CPUInfo("tiny", "x86_64", AVX2, 2, 2, 2), MemoryInfo(512 * MIB, 200 * MIB))
    paths = app_paths(tmp_path / "cove").ensure()
    with pytest.raises(model_loader.ModelFileError) as refused:
        model_loader.prepare_model(starter_model, paths, n_ctx=8192, hardware=lambda: small)
    message = str(refused.value)
    assert "will not fit" in message and "210 MB of memory is available" in message  # 200 MiB
    assert "MB" in message and "context cache" in message and "2,048-token context" in message


def test_a_model_that_fits_goes_on_to_the_probe(starter_model: Path, paths, monkeypatch) -> None:
    from desktop.core.engine import loader as model_loader

    roomy = HardwareInfo(CPUInfo("big", "x86_64", AVX2, 8, 8, 8), MemoryInfo(64 << 30, 32 << 30))
    info, config = model_loader.prepare_model(starter_model, paths, n_ctx=2048, hardware=lambda: roomy)
    assert info.path == starter_model and config.n_ctx == 2048
