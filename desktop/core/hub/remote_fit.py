"""Will a model on the Hub fit this machine? Its GGUF header, fetched by range, judged by fit.py.

:func:`judge` is the one verdict for a model of a Hub repository, used by ``cove models files`` and
the download pane alike. Only the header is read (from 1 MiB, growing to at most 64 MiB; the tensor data is never
fetched). For a split model the headers of all its parts are read and merged: the first part's
metadata, every part's tensors. The estimate and verdict are exactly those of
``desktop.core.models.fit`` for the same file on disk, with the options the model loader uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from desktop.core.hub.client import HubClient, RemoteFile
from desktop.core.hub.errors import HubError
from desktop.core.models.fit import FitEstimate, choose_gpu_layers, estimate, verdict
from desktop.core.models.gguf import GGUFError, GGUFHeaderIncomplete, GGUFInfo, read_gguf_header
from desktop.core.models.names import ModelChoice
from desktop.core.system.settings import DEFAULT_CONTEXT_CAP, Settings
from desktop.core.text.units import format_size

__all__ = ["remote_header", "remote_info", "fit_estimate", "fit_verdict", "default_context", "scale_weights",
           "FitOptions", "HubFit", "reference_choice", "judge", "TOKEN_NEEDED", "UNKNOWN", "UNUSABLE",
           "FIRST_READ", "MAX_HEADER"]

FIRST_READ = 1 << 20
MAX_HEADER = 64 << 20


def _extend(client: HubClient, file: RemoteFile, data: bytes, upto: int, etag: str) -> tuple[bytes, str]:
    """``data`` (the file's first bytes) extended to ``upto`` bytes, and the file's ETag. When the
    file changed since ``etag`` (or the server ignored the range) the bytes are read afresh from 0."""
    with client.open_range(file, len(data), if_range=etag, end=upto,
                           purpose=f"read the header of {file.filename}") as response:
        out = bytearray(data if response.start == len(data) else b"")
        for block in response.iter_chunks(1 << 20):
            out += block
            if len(out) >= upto:
                break
    return bytes(out[:upto]), response.etag


def remote_header(client: HubClient, file: RemoteFile) -> GGUFInfo:
    """The GGUF header of ``file`` on the Hub; raises HubError (network) or GGUFError (the file)."""
    data, etag, want = b"", "", min(FIRST_READ, file.size)
    while True:
        data, etag = _extend(client, file, data, want, etag)
        try:
            return read_gguf_header(data, file.size, file.filename)
        except GGUFHeaderIncomplete as short:
            if len(data) < want:  # the server sent less than the file's listed size
                raise GGUFError(f"{file.filename}: the Hub sent {len(data):,} bytes where the file should "
                                f"be {file.size:,} bytes long") from None
            if want >= MAX_HEADER or want >= file.size:
                raise GGUFError(f"{file.filename}: its header is larger than {format_size(MAX_HEADER)}, more than "
                                "Cove reads to judge a model") from None
            want = min(max(want * 2, short.needed + (64 << 10)), MAX_HEADER, file.size)


def remote_info(client: HubClient, choice: ModelChoice) -> GGUFInfo:
    """The model ``choice`` (one file, or all parts of a split one) as one GGUFInfo: what fit.py needs."""
    if not choice.complete:
        raise GGUFError(f"{choice.name}: the repository has {len(choice.parts)} of its {choice.expected_parts} "
                        "parts, so it cannot be loaded")
    infos = [remote_header(client, part) for part in choice.parts]
    if len(infos) == 1:
        return infos[0]
    first = infos[0]
    count = first.metadata.get("split.count")
    if "general.architecture" not in first.metadata:
        raise GGUFError(f"{choice.name}: the first part does not describe the model (no general.architecture)")
    if isinstance(count, int) and count != len(infos):
        raise GGUFError(f"{choice.name}: the file says it has {count} parts but the repository has {len(infos)}")
    tensors = tuple(t for info in infos for t in info.tensors)
    return replace(first, path=Path(choice.name), file_size=sum(i.file_size for i in infos), tensors=tensors)


def default_context(info: GGUFInfo) -> int:
    """The context Cove loads a model with when none is set: the same rule as
    ``runtime.default_context`` (min(trained, 4096)), without importing llama_cpp."""
    return max(256, min(info.context_length or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP))


def fit_estimate(info: GGUFInfo, hardware: Any, n_ctx: int, *, gpu_layers: int = 0, cache_type: str = "f16",
                 flash_attn: bool = False, repack: bool = True) -> FitEstimate:
    """fit.estimate with the options and GPU-layer choice of ``model_loader.check_fit``
    (``gpu_layers`` -1: as many as the GPU's free memory holds)."""
    options: dict[str, Any] = {"cache_type": cache_type, "flash_attn": flash_attn, "repack": repack,
                               "cpu_features": getattr(getattr(hardware, "cpu", None), "features", None)}
    if gpu_layers < 0:
        free = hardware.gpu_free() if hasattr(hardware, "gpu_free") else 0
        gpu_layers = choose_gpu_layers(info, n_ctx, free, **options) if free else 0
        gpu_layers = -1 if gpu_layers > (info.block_count or 0) else gpu_layers
    return estimate(info, n_ctx, gpu_layers, **options)


def fit_verdict(info: GGUFInfo, hardware: Any, n_ctx: int, **options: Any) -> tuple[str, str]:
    """('runs well' | 'tight' | 'will not fit', the reason in a sentence) for ``info`` at ``n_ctx``
    tokens on ``hardware`` (a HardwareInfo); ``options`` as for :func:`fit_estimate`."""
    return verdict(fit_estimate(info, hardware, n_ctx, **options), hardware)


def scale_weights(fit: FitEstimate, factor: float) -> FitEstimate:
    """``fit`` for another quantization of the same model: its weights (and the GPU's share of
    them) scaled by the ratio of the file sizes; context cache and work buffers are the same."""
    weights = int(fit.weights * factor)
    on_gpu = int(fit.on_gpu * factor) if fit.on_gpu else 0
    return replace(fit, weights=weights, total=fit.total - fit.weights + weights, on_gpu=on_gpu)


# Labels of a model that could not be judged (besides fit.py's runs well / tight / will not fit).
TOKEN_NEEDED = "token needed"   # a gated file: its header needs a Hugging Face token
UNKNOWN = "unknown"             # the header could not be read (offline, the Hub failed)
UNUSABLE = "unusable"           # the file cannot be loaded (a broken header, missing parts)


@dataclass(frozen=True)
class FitOptions:
    """How the model would be loaded, as ``desktop.core.engine.loader.check_fit`` judges it."""

    n_ctx: int = 0            # context length; 0: the model's default (min(trained, 4096))
    gpu_layers: int = 0       # -1: as many as the GPU's free memory holds
    cache_type: str = "f16"
    flash_attn: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, n_ctx: int = 0) -> FitOptions:
        """As Cove loads a model with ``settings``; ``n_ctx`` (when not 0) overrides their context length."""
        acc = settings.acceleration
        return cls(n_ctx or settings.generation.n_ctx, acc.gpu_layers, acc.kv_cache_type, acc.flash_attention)


@dataclass(frozen=True)
class HubFit:
    """The fit verdict for one model of a Hub repository."""

    name: str       # the model's file (the first part of a split model)
    label: str      # fit.py's RUNS_WELL, TIGHT or WILL_NOT_FIT, or TOKEN_NEEDED, UNKNOWN, UNUSABLE
    reason: str     # one sentence for a person
    needs: int = 0  # bytes of memory (with the GPU's share) the model takes; 0 when not judged
    n_ctx: int = 0  # the context length the verdict assumes; 0 when not judged


def reference_choice(choices: Sequence[ModelChoice]) -> ModelChoice | None:
    """The model whose header stands for all of a repository's: the first (smallest) complete one."""
    return next((c for c in choices if c.complete), None)


def judge(choice: ModelChoice, reference: ModelChoice | None, header: Callable[[ModelChoice], GGUFInfo],
          hardware: Any, options: FitOptions | None = None) -> HubFit:
    """The fit verdict for ``choice`` on ``hardware`` (a HardwareInfo), loaded with ``options``.

    The quantizations of a model share its architecture, layers, heads and vocabulary, so one
    header, ``header(reference)`` (see :func:`reference_choice`), serves every model of a
    repository, and each one's weights come from its own size. Never raises for the Hub or the
    file: a header that cannot be read gives TOKEN_NEEDED, UNKNOWN or UNUSABLE with the reason.
    """
    if not choice.complete:
        return HubFit(choice.name, UNUSABLE, f"the repository has {len(choice.parts)} of its "
                                             f"{choice.expected_parts} parts, so it cannot be loaded")
    reference = reference or choice
    options = options or FitOptions()
    try:
        info = header(reference)
    except HubError as exc:
        return HubFit(choice.name, TOKEN_NEEDED if exc.kind == "auth" else UNKNOWN, _first_line(exc))
    except GGUFError as exc:
        return HubFit(choice.name, UNUSABLE if reference.name == choice.name else UNKNOWN, _first_line(exc))
    n_ctx = options.n_ctx or default_context(info)
    fit = fit_estimate(info, hardware, n_ctx, gpu_layers=options.gpu_layers, cache_type=options.cache_type,
                       flash_attn=options.flash_attn)
    if reference.name != choice.name and reference.size:
        fit = scale_weights(fit, choice.size / reference.size)
    label, reason = verdict(fit, hardware)
    return HubFit(choice.name, label, reason, fit.total + fit.on_gpu, n_ctx)


def _first_line(exc: BaseException) -> str:
    """A one-line message for a person."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
