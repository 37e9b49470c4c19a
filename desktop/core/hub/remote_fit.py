"""Will a model on the Hub fit this machine? Its GGUF header, fetched by range, judged by fit.py.

Only the header is read (from 1 MiB, growing to at most 64 MiB; the tensor data is never
fetched). For a split model the headers of all its parts are read and merged: the first part's
metadata, every part's tensors. The estimate and verdict are exactly those of
``desktop.core.models.fit`` for the same file on disk, with the options the model loader uses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.core.models.fit import FitEstimate, choose_gpu_layers, estimate, verdict
from desktop.core.models.gguf import GGUFError, GGUFHeaderIncomplete, GGUFInfo, read_gguf_header
from desktop.core.system.settings import DEFAULT_CONTEXT_CAP

if TYPE_CHECKING:
    from desktop.core.hub.client import HubClient, RemoteFile
    from desktop.core.models.names import ModelChoice

__all__ = ["remote_header", "remote_info", "fit_estimate", "fit_verdict", "default_context", "FIRST_READ",
           "MAX_HEADER"]

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
                raise GGUFError(f"{file.filename}: its header is larger than {MAX_HEADER >> 20} MiB, more than "
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
