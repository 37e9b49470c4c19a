"""From a path the user chose to a loaded :class:`Runtime`: check, probe, mark, load.

1. The file is checked in Python (exists, is a file, is a well-formed GGUF) with a message that
   names the problem.
2. The quarantine probe (a child process) finds the configuration that works here; its verdict is
   cached per file, llama.cpp build and machine.
3. A crash marker records what is being loaded; it is removed after the load returns. A marker
   left at start-up means Cove died loading that model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.core.engine.probe import probe_model
from desktop.core.models.fit import WILL_NOT_FIT, choose_gpu_layers, estimate, verdict
from desktop.core.models.gguf import GGUFError, GGUFInfo, read_gguf
from desktop.core.system.atomic import read_json, write_json_atomic
from desktop.core.system.hardware import detect
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import GenerationSettings
from desktop.core.text.units import format_size

# The llama.cpp modules (runtime, backends) are imported inside the functions that need them:
# llama_cpp takes long to load, and the window and every `cove` command import this module.


MAX_TRAINED_CONTEXT = 1 << 27  # far beyond any real model; llama.cpp sizes buffers from it


class ModelFileError(ValueError):
    """The chosen model cannot be used; the message names the problem for a person."""


@dataclass(frozen=True)
class CrashRecord:
    """What Cove was loading when it last died."""

    path: str
    config: dict[str, Any]
    at: float


def check_model_file(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate a model file before any native code sees it."""
    p = Path(path).expanduser()
    if not str(path).strip():
        raise ModelFileError("No model file was given.")
    if not p.exists():
        raise ModelFileError(f"{p} does not exist.")
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder, not a model file. Choose a .gguf file inside it.")
    try:
        info = read_gguf(p)
    except GGUFError as exc:
        raise ModelFileError(str(exc)) from exc
    trained = info.context_length
    if trained is not None and not 0 < trained <= MAX_TRAINED_CONTEXT:
        raise ModelFileError(f"{p.name} claims a trained context of {trained:,} tokens, which is impossible: "
                             "the file is damaged or was made wrongly.")
    return info


def read_crash_marker(paths: AppPaths) -> CrashRecord | None:
    """The load that was under way when Cove last died, if any."""
    data = read_json(paths.crash_marker, None)
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return None
    return CrashRecord(data["path"], dict(data.get("config") or {}), float(data.get("at") or 0))


def clear_crash_marker(paths: AppPaths) -> None:
    """Forget the crash marker."""
    paths.crash_marker.unlink(missing_ok=True)


def write_crash_marker(paths: AppPaths, path: Path, config: dict[str, Any]) -> None:
    """Record that ``path`` is about to be loaded in-process."""
    write_json_atomic(paths.crash_marker, {"path": str(path), "config": config, "at": time.time()})


SAFE_MODE_CONTEXT = 2048


def detect_hardware() -> Any:
    """This machine for the fit check: memory always, GPU devices when offload is possible."""
    from desktop.core.engine.backends import backend_report, supports_gpu_offload  # lazy: llama_cpp

    return detect(backend_report() if supports_gpu_offload() else None)


def check_fit(info: GGUFInfo, hardware: Any, *, n_ctx: int, gpu_layers: int = 0, cache_type: str = "f16",
              flash_attn: bool = False, repack: bool = True) -> int:
    """Refuse a model that will not fit in memory (:class:`ModelFileError` naming the sizes).

    Returns the GPU layers to use: ``gpu_layers`` as given, or for -1 (automatic) every layer whose
    weights, cache and buffers fit in the GPU's free memory.
    """
    options = {"cache_type": cache_type, "flash_attn": flash_attn, "repack": repack,
               "cpu_features": hardware.cpu.features}
    if gpu_layers < 0:
        gpu_layers = choose_gpu_layers(info, n_ctx, hardware.gpu_free(), **options) if hardware.gpu_free() else 0
        gpu_layers = -1 if gpu_layers > (info.block_count or 0) else gpu_layers
    fit = estimate(info, n_ctx, gpu_layers, **options)
    label, reason = verdict(fit, hardware)
    if label == WILL_NOT_FIT:
        smaller = estimate(info, min(n_ctx, 2048), gpu_layers, **options)
        hint = (f" With a {smaller.n_ctx:,}-token context it would need {format_size(smaller.total)}: lower the "
                "context length in Settings." if smaller.total < 0.9 * fit.total and n_ctx > 2048 else
                " Choose a smaller model or a smaller quantization of it.")
        raise ModelFileError(f"{info.path.name} will not fit in this computer's memory, so Cove did not load it: "
                             f"it {reason}.{hint}")
    return gpu_layers


def prepare_model(path: str | os.PathLike[str], paths: AppPaths, *, n_ctx: int = 0, n_threads: int = 0,
                  probe_timeout: float = 180.0, conservative: bool = False, gpu_layers: int = 0,
                  flash_attention: bool = False, kv_cache_type: str = "f16",
                  hardware: Callable[[], Any] | None = None) -> tuple[GGUFInfo, Any]:
    """Check, fit and probe a model without loading it here: returns its info and the
    :class:`desktop.core.engine.runtime.LoadConfig` that works on this machine.

    ``conservative`` (safe mode): no weight repacking, no GPU offload, at most 2048 tokens of context.
    ``hardware`` returns the :class:`desktop.core.system.hardware.HardwareInfo` the fit is judged against
    (default: :func:`detect_hardware`; tests inject a machine with little memory).

    Raises :class:`ModelFileError` with a person-readable message on any failure, including a model
    that will not fit in memory (checked before the probe child loads it).
    """
    info = check_model_file(path)  # before llama_cpp is even imported
    from desktop.core.engine.backends import supports_gpu_offload  # lazy: llama_cpp
    from desktop.core.engine.runtime import LoadConfig, default_context  # lazy: llama_cpp

    threads = n_threads or GenerationSettings().effective_threads()
    if conservative:
        trained = info.context_length or SAFE_MODE_CONTEXT
        n_ctx = min(n_ctx or SAFE_MODE_CONTEXT, SAFE_MODE_CONTEXT, trained)
    layers = 0 if conservative or not supports_gpu_offload() else gpu_layers  # -1: all layers
    cache_type = kv_cache_type if not conservative else "f16"
    flash = (flash_attention and not conservative) or cache_type != "f16"
    layers = check_fit(info, (hardware or detect_hardware)(), n_ctx=n_ctx or default_context(info),
                       gpu_layers=layers, cache_type=cache_type, flash_attn=flash, repack=not conservative)
    probed = probe_model(info.path, threads=threads, timeout=probe_timeout, cache_file=paths.probe_file)
    if not probed.ok:
        raise ModelFileError(probed.message)
    return info, LoadConfig(n_ctx=n_ctx, n_threads=threads, n_gpu_layers=layers,
                            flash_attn=flash_attention and not conservative,
                            cache_type=cache_type,
                            use_extra_bufts=bool(probed.config.get("use_extra_bufts")) and not conservative,
                            builtin_template=bool(probed.config.get("builtin_template")),
                            template_note=str(probed.config.get("template_problem", "")))


def open_runtime(info: GGUFInfo, config: Any, paths: AppPaths) -> Any:
    """Load a prepared model in this process, guarded by the crash marker."""
    from desktop.core.engine.runtime import ModelLoadError, Runtime  # lazy: llama_cpp

    write_crash_marker(paths, info.path, config.to_dict())
    try:
        runtime = Runtime(info.path, config, info=info)
    except ModelLoadError as exc:
        raise ModelFileError(str(exc)) from exc
    finally:
        clear_crash_marker(paths)
    return runtime


def load_runtime(path: str | os.PathLike[str], paths: AppPaths, *, n_ctx: int = 0, n_threads: int = 0,
                 probe_timeout: float = 180.0) -> Any:
    """Check, probe and load a model; returns a :class:`desktop.core.engine.runtime.Runtime`."""
    info, config = prepare_model(path, paths, n_ctx=n_ctx, n_threads=n_threads, probe_timeout=probe_timeout)
    return open_runtime(info, config, paths)
