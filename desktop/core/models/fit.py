"""Will this model fit? Memory estimate from GGUF metadata alone, before anything is loaded.

The figures mirror how llama.cpp (as vendored by llama-cpp-python 0.3.36) sizes its buffers:

* **weights**: the tensors' data bytes. On the CPU they are memory-mapped file pages, all read by
  one forward pass. With weight repacking (``use_extra_bufts``) the tensors llama.cpp repacks for
  this CPU (``ggml-cpu/repack.cpp``: Q4_0, Q4_K, IQ4_NL, MXFP4 with AVX2, Q2_K with AVX-512, more
  on ARM) are copied into anonymous memory as well, so they count twice. With GPU offload the last
  ``n_gpu_layers`` blocks (and the output layer once every block is offloaded) go to the GPU; the
  token embeddings always stay on the CPU.
* **KV cache**: per attention layer ``(K + V) = (n_embd_k_gqa + n_embd_v_gqa) x cells x bytes(type)``
  with per-layer ``head_count_kv`` arrays honoured (0: a layer without attention), ``cells`` =
  ``n_ctx`` padded to 256. Sliding-window layers (``{arch}.attention.sliding_window``, layer pattern
  as in ``llama_model_*::load_arch_hparams``) get ``GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256)``
  cells, unless ``swa_full`` (llama.cpp's default, which llama-cpp-python keeps: full-size). The
  buffer is cleared at creation, so it is resident at once.
* **compute**: the part of llama.cpp's compute buffer Cove can touch at a full context: the attention
  step of one 512-token batch (``KQ`` = ``n_kv x n_ubatch x n_head`` f32 and the masks, without flash
  attention) and the CPU backend's work buffer, where ``softmax(KQ)`` is converted to the V cache's
  type for ``KQV``. llama.cpp *reserves* more: logits for ``n_ubatch`` rows (``n_vocab x n_ubatch``
  f32), and llama-cpp-python allocates a ``n_batch x n_vocab`` float32 ``scores`` array; with
  ``logits_all=False`` (Cove) only one row is ever written, so those pages are never touched. They are
  reported as ``reserved`` (address space, not memory) and left out of ``total``.
* **overhead**: what loading adds besides those buffers (the vocabulary's tables, about 150 bytes a
  token, thread pools, allocator slack): 17.5 MiB + 150 B x n_vocab, measured with
  ``tests/e2e/test_fit_accuracy.py`` on SmolLM2-135M (49k tokens) and Gemma 3 270M (262k tokens).

``total`` is the resident memory (RSS: anonymous + file-backed) a process gains by loading the model
and then filling its context: the peak, which is what must fit. The accuracy test measures exactly
that, the VmRSS of a child process after load + a prompt that fills the context + a few generated
tokens, minus the same process's VmRSS before loading, and asserts ``|total - measured| <= 20 %``.
Right after loading, or after a short conversation, the process is smaller by up to ``compute``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop.core.models.gguf import GGUFInfo
from desktop.core.system.hardware import cpu_info
from desktop.core.text.units import format_size

__all__ = ["FitEstimate", "estimate", "verdict", "choose_gpu_layers", "CACHE_BYTES", "RUNS_WELL", "TIGHT",
           "WILL_NOT_FIT", "OVERHEAD_FIXED", "OVERHEAD_PER_TOKEN"]

RUNS_WELL, TIGHT, WILL_NOT_FIT = "runs well", "tight", "will not fit"
CACHE_BYTES: dict[str, float] = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32,
                                 "q4_1": 20 / 32, "q5_0": 22 / 32, "q5_1": 24 / 32, "iq4_nl": 18 / 32}
OVERHEAD_FIXED = 17.5 * (1 << 20)
OVERHEAD_PER_TOKEN = 150
MAX_UBATCH = 512  # llama-cpp-python's default n_ubatch
# Sliding-window layer pattern per architecture (load_swa_pattern(ml, n, dense_first) calls).
_SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False), "gemma3": (6, False), "gemma-embedding": (6, False), "gemma3n": (5, False),
    "cohere2": (4, False), "cohere2moe": (4, True), "exaone4": (4, False), "exaone-moe": (4, False),
    "llama4": (4, False), "olmo2": (4, False), "gpt-oss": (2, False), "afmoe": (4, False),
    "mellum": (4, False), "smallthinker": (4, True), "modern-bert": (3, True), "plamo3": (8, False),
    "laguna": (4, True), "phi3": (1, False)}
# (ggml type, CPU features) -> the row multiple llama.cpp's repacking needs (ggml-cpu/repack.cpp).
_REPACK_X86 = {"Q4_0": ("avx2", 8), "Q4_K": ("avx2", 8), "IQ4_NL": ("avx2", 8), "MXFP4": ("avx2", 8),
               "Q2_K": ("avx512f", 8)}
_REPACK_ARM = {"Q4_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8, "IQ4_NL": 4, "MXFP4": 4, "Q8_0": 4, "Q1_0": 4}


@dataclass(frozen=True)
class FitEstimate:
    """Bytes a model needs. ``total`` is what system memory must hold (RSS at a full context);
    ``on_gpu`` what the GPU must hold; ``reserved`` is address space llama.cpp and llama-cpp-python
    allocate but Cove never touches (not memory, not in ``total``)."""

    weights: int
    kv_cache: int
    compute: int
    overhead: int
    total: int
    on_gpu: int
    reserved: int = 0
    n_ctx: int = 0

    def describe(self) -> str:
        """One line for a person."""
        text = (f"about {format_size(self.total)} of memory (weights {format_size(self.weights)}, context cache "
                f"{format_size(self.kv_cache)} for {self.n_ctx:,} tokens, work buffers "
                f"{format_size(self.compute)}, other {format_size(self.overhead)})")
        return text + (f" plus {format_size(self.on_gpu)} on the GPU" if self.on_gpu else "")

    def to_dict(self) -> dict[str, int]:
        """Plain data for JSON."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


MAX_SYNTHETIC_LAYERS = 4096  # a description without a tensor table (tests, Hub metadata)


def _pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def _arch_value(info: GGUFInfo, suffix: str) -> Any:
    return info.metadata.get(f"{info.architecture}.{suffix}")


def _block_count(info: GGUFInfo) -> int:
    """The model's layers. A real model has at least one tensor per layer, so a hostile
    block_count (2**32 - 1) is capped there and cannot make the per-layer lists exhaust memory
    before llama.cpp gets to refuse the file."""
    return min(info.block_count or 0, len(info.tensors) or MAX_SYNTHETIC_LAYERS)


def _per_layer(value: Any, n_layer: int, default: int) -> list[int]:
    """A scalar or per-layer array (``ArraySummary`` for long ones: its maximum) as one int per layer."""
    if isinstance(value, list):
        values = [v if isinstance(v, int) and not isinstance(v, bool) else default for v in value]
        return (values + [values[-1] if values else default] * n_layer)[:n_layer]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layer
    maximum = getattr(value, "maximum", None)
    return [maximum if isinstance(maximum, int) else default] * n_layer


def _swa_layers(info: GGUFInfo, n_layer: int) -> tuple[list[bool], int]:
    """Which layers use a sliding window, and its size (0: none)."""
    n_swa = _arch_value(info, "attention.sliding_window")
    if not isinstance(n_swa, int) or isinstance(n_swa, bool) or n_swa <= 0:
        return [False] * n_layer, 0
    pattern = _arch_value(info, "attention.sliding_window_pattern")
    if isinstance(pattern, list) and pattern and all(isinstance(p, bool) for p in pattern):
        return (list(pattern) + [False] * n_layer)[:n_layer], n_swa
    n_pattern, dense_first = _SWA_PATTERNS.get(info.architecture, (0, False))
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        n_pattern = pattern
    if dense_first:
        return [n_pattern == 0 or il % n_pattern != 0 for il in range(n_layer)], n_swa
    return [n_pattern == 0 or il % n_pattern < n_pattern - 1 for il in range(n_layer)], n_swa


def _layer_of(name: str, n_layer: int) -> int:
    """The block a tensor belongs to; -1 for the input layer, ``n_layer`` for the output layer."""
    if name.startswith("blk."):
        part = name.split(".", 2)[1]
        return int(part) if part.isdigit() else n_layer
    return -1 if name.startswith(("token_embd", "token_types", "position_embd")) else n_layer


def _repacked(tensor: Any, features: frozenset[str]) -> bool:
    """True when llama.cpp's CPU backend repacks this tensor on a CPU with ``features``."""
    if not tensor.name.startswith(("blk.", "output.")) or len(tensor.shape) < 2:
        return False
    rows = tensor.shape[1]
    if "neon" in features:
        multiple = _REPACK_ARM.get(tensor.type_name)
        return multiple is not None and ("dotprod" in features or "i8mm" in features) and rows % multiple == 0
    rule = _REPACK_X86.get(tensor.type_name)
    return rule is not None and rule[0] in features and rows % rule[1] == 0


@dataclass(frozen=True)
class _Shape:
    """The model's dimensions as the estimate needs them, from the GGUF metadata alone."""

    n_layer: int
    n_embd: int
    n_head: int
    n_vocab: int
    n_ff: int
    head_k: int
    head_v: int
    head_k_swa: int
    head_v_swa: int
    kv_heads: list[int]
    swa: list[bool]   # per layer: a sliding-window layer
    n_swa: int        # the window (0: none)

    @classmethod
    def of(cls, info: GGUFInfo) -> _Shape:
        """Read the dimensions of ``info``, with llama.cpp's defaults for the missing ones."""
        n_layer = _block_count(info)
        n_embd = info.embedding_length or 0
        n_head = info.head_count or 0
        head_k = info.key_length or (n_embd // n_head if n_head else 0)
        head_v = info.value_length or head_k
        swa, n_swa = _swa_layers(info, n_layer)
        return cls(n_layer, n_embd, n_head,
                   n_vocab=info.vocab_size or _arch_value(info, "vocab_size") or 0,
                   n_ff=max(_per_layer(_arch_value(info, "feed_forward_length"), max(n_layer, 1), 0)),
                   head_k=head_k, head_v=head_v,
                   head_k_swa=_arch_value(info, "attention.key_length_swa") or head_k,
                   head_v_swa=_arch_value(info, "attention.value_length_swa") or head_v,
                   kv_heads=_per_layer(_arch_value(info, "attention.head_count_kv"), n_layer, n_head),
                   swa=swa, n_swa=n_swa)


def _kv_bytes(shape: _Shape, cells: int, swa_cells: int, kv_type: float, first_gpu: int) -> tuple[float, float]:
    """The KV cache's bytes on the CPU and on the GPU (layers from ``first_gpu`` on are offloaded)."""
    kv_cpu = kv_gpu = 0.0
    for il in range(shape.n_layer):
        k, v = (shape.head_k_swa, shape.head_v_swa) if shape.swa[il] else (shape.head_k, shape.head_v)
        size = (k + v) * shape.kv_heads[il] * (swa_cells if shape.swa[il] else cells) * kv_type
        if il >= first_gpu:
            kv_gpu += size
        else:
            kv_cpu += size
    return kv_cpu, kv_gpu


def _weight_bytes(info: GGUFInfo, n_layer: int, first_gpu: int,
                  repack_features: frozenset[str] | None) -> tuple[int, int]:
    """The weights' bytes on the CPU and on the GPU. ``repack_features``: the CPU features when
    weight repacking is on (the tensors it repacks count twice on the CPU), None when it is off."""
    weights_cpu = weights_gpu = 0
    for tensor in info.tensors:
        if _layer_of(tensor.name, n_layer) >= first_gpu:
            weights_gpu += tensor.nbytes
        else:
            weights_cpu += tensor.nbytes
            if repack_features and _repacked(tensor, repack_features):
                weights_cpu += tensor.nbytes  # the repacked copy, next to the mapped original
    return weights_cpu, weights_gpu


def _compute_bytes(shape: _Shape, kv_cells: int, rows: int, ubatch: int, flash_attn: bool,
                   cache_type: str) -> tuple[float, float, float, float]:
    """llama.cpp's compute buffer, phase by phase (the graph allocator reuses memory between them):
    the part Cove touches (``graph``), that plus the CPU backend's work buffer (``touched``), what
    llama.cpp reserves (``reserve``) and the output step of one row (``one_row_out``)."""
    n_embd, n_head, n_vocab = shape.n_embd, shape.n_head, shape.n_vocab
    wide = max(n_embd, n_head * max(shape.head_k, shape.head_v))
    masks = 2 if shape.n_swa else 1
    if flash_attn:
        attention = masks * kv_cells * rows * 2 + 6 * wide * rows * 4
        work = 0.0
    else:
        attention = (n_head + masks) * kv_cells * rows * 4 + 6 * wide * rows * 4
        work = n_head * kv_cells * rows * (2.0 if cache_type in ("f16", "f32", "bf16") else 34 / 32)
    feed_forward = (2 * shape.n_ff + 2 * n_embd) * rows * 4
    one_row_out = 3 * n_embd * rows * 4 + n_vocab * 4
    all_rows_out = 3 * n_embd * ubatch * 4 + n_vocab * ubatch * 4
    graph = max(attention, feed_forward, one_row_out)
    return graph, graph + work, max(attention, feed_forward, all_rows_out), one_row_out


def estimate(info: GGUFInfo, n_ctx: int, n_gpu_layers: int = 0, cache_type: str = "f16", n_batch: int = 512, *,
             flash_attn: bool = False, repack: bool = False, cpu_features: frozenset[str] | None = None,
             swa_full: bool = True, n_used: int | None = None) -> FitEstimate:
    """Memory for ``info`` at ``n_ctx`` tokens of context (see the module docstring for each part).

    ``n_gpu_layers``: -1 for all; ``repack``: llama.cpp's weight repacking is on (then the CPU's
    features decide which tensors it copies; detected when not given); ``n_used``: estimate the
    compute part for a context holding only that many tokens instead of a full one.
    """
    shape = _Shape.of(info)
    n_layer = shape.n_layer
    offload = n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)
    first_gpu = n_layer + 1 - offload  # layers (and the output layer, n_layer) from here on go to the GPU

    n_ctx_pad = _pad(max(n_ctx, 1), 256)
    ubatch = max(1, min(n_batch, MAX_UBATCH, n_ctx))
    swa_cells = n_ctx_pad if swa_full else _pad(min(n_ctx_pad, shape.n_swa + ubatch), 256)
    kv_cpu, kv_gpu = _kv_bytes(shape, n_ctx_pad, swa_cells, CACHE_BYTES.get(cache_type, 2.0), first_gpu)
    features = (cpu_features if cpu_features is not None else cpu_info().features) if repack else None
    weights_cpu, weights_gpu = _weight_bytes(info, n_layer, first_gpu, features)

    kv_cells = n_ctx_pad if n_used is None else min(n_ctx_pad, _pad(max(n_used, 1), 256))
    rows = ubatch if n_used is None else max(1, min(ubatch, n_used))
    graph, touched, reserve, one_row_out = _compute_bytes(shape, kv_cells, rows, ubatch, flash_attn, cache_type)
    scores = n_batch * shape.n_vocab * 4  # llama-cpp-python's untouched scores array

    on_gpu = 0.0
    compute = touched
    if offload and (weights_gpu or kv_gpu):
        on_gpu = weights_gpu + kv_gpu + reserve  # device memory is allocated, touched or not
        compute = one_row_out if first_gpu == 0 else touched  # the CPU keeps inputs and copies only
    overhead = OVERHEAD_FIXED + OVERHEAD_PER_TOKEN * shape.n_vocab
    total = weights_cpu + kv_cpu + compute + overhead
    return FitEstimate(int(weights_cpu + weights_gpu), int(kv_cpu + kv_gpu), int(compute), int(overhead),
                       int(total), int(on_gpu), int(max(0.0, reserve - graph) + scores), n_ctx)


def verdict(fit: FitEstimate, hardware: Any) -> tuple[str, str]:
    """'runs well', 'tight' or 'will not fit' for ``fit`` on ``hardware`` (a
    :class:`desktop.core.system.hardware.HardwareInfo`, or anything with ``memory.available``,
    ``gpu_free()`` and ``unified_memory()``), with the reason in a sentence.

    Runs well under 70 % of the available memory (and, with offload, of the GPU's free memory);
    tight under 90 %; anything more will not fit: the machine would swap or freeze.
    """
    available = int(getattr(hardware.memory, "available", 0) or 0)
    unified = bool(hardware.unified_memory()) if hasattr(hardware, "unified_memory") else False
    need_ram = fit.total + (fit.on_gpu if unified else 0)
    levels = []
    if available <= 0:
        levels.append((TIGHT, f"needs {fit.describe()}; Cove could not read how much memory is free"))
    else:
        ratio = need_ram / available
        label = RUNS_WELL if ratio < 0.7 else TIGHT if ratio < 0.9 else WILL_NOT_FIT
        levels.append((label, f"needs {fit.describe()}; {format_size(available)} of memory is available"))
    if fit.on_gpu and not unified:
        free = int(hardware.gpu_free() or 0)
        ratio = fit.on_gpu / free if free else float("inf")
        label = RUNS_WELL if ratio < 0.9 else TIGHT if ratio < 1.0 else WILL_NOT_FIT
        levels.append((label, f"needs {format_size(fit.on_gpu)} on the GPU; {format_size(free)} is free there"))
    order = {RUNS_WELL: 0, TIGHT: 1, WILL_NOT_FIT: 2}
    worst = max(levels, key=lambda item: order[item[0]])
    return worst[0], "; ".join(reason for label, reason in levels if label == worst[0])


def choose_gpu_layers(info: GGUFInfo, n_ctx: int, gpu_free: int, **options: Any) -> int:
    """The most layers (block_count + 1 = everything, including the output layer) whose weights,
    KV cache and compute buffer fit in 90 % of ``gpu_free`` bytes; 0 when none does."""
    n_layer = _block_count(info)
    best = 0
    for layers in range(n_layer + 1, 0, -1):
        if estimate(info, n_ctx, layers, **options).on_gpu <= 0.9 * gpu_free:
            best = layers
            break
    return best
