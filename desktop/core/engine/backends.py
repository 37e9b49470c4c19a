"""llama.cpp's backends: loading the loadable ones, and reporting what the build is and sees.

Importing this module registers the backends of a ``GGML_BACKEND_DL`` build (see
:func:`_load_dynamic_backends`), so it must be imported before any ``Llama`` is built:
:mod:`desktop.core.engine.llama_params` does so. The report (:func:`backend_report`) feeds the
hardware page, ``cove hardware`` and the fit estimate.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as llama_lib

__all__ = ["BACKENDS_REGISTERED", "LLAMA_CPP_VERSION", "backend_report", "supports_gpu_offload", "system_info"]

LLAMA_CPP_VERSION: str = llama_cpp.__version__
_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


def _ggml_function(name: str) -> Any:
    """A function of the libggml that libllama loaded (through libllama's handle: dlsym searches its
    dependencies; Windows looks the already loaded ggml.dll up by name)."""
    try:
        return getattr(llama_lib._lib, name)  # noqa: SLF001 - llama-cpp-python's library handle
    except AttributeError:
        if os.name != "nt":
            raise
        return getattr(ctypes.CDLL("ggml.dll"), name)


def _load_dynamic_backends() -> int:
    """Load llama.cpp backends built as loadable modules; returns how many backends are registered.

    A ``GGML_BACKEND_DL`` build (the distributable CPU variant: one library per instruction-set
    level, the best one for this CPU picked at run time; see installers/README.md) registers no
    backend until one is loaded from a file, and llama-cpp-python 0.3.36 never loads them
    (abetlen/llama-cpp-python#2069), so every model would fail to load. They are where the wheel
    puts them (``site-packages/bin``) or where build.spec puts them (``llama_cpp/lib``). A build with
    its CPU backend linked in has it registered already, and nothing happens.
    """
    try:
        count, load = _ggml_function("ggml_backend_reg_count"), _ggml_function("ggml_backend_load_all_from_path")
    except (AttributeError, OSError):
        return -1
    count.argtypes, count.restype = [], ctypes.c_size_t
    load.argtypes, load.restype = [ctypes.c_char_p], None
    if count() == 0:
        package = Path(llama_cpp.__file__).resolve().parent
        for folder in (package / "lib", package.parent / "bin"):
            if folder.is_dir() and any(folder.glob("*ggml-*")):
                load(os.fsencode(folder))
                if count():
                    break
    return int(count())


BACKENDS_REGISTERED: int = _load_dynamic_backends()


def system_info() -> str:
    """llama.cpp's one-line report of the CPU features and backends it was built with."""
    return llama_lib.llama_print_system_info().decode("utf-8", "replace").strip()


def supports_gpu_offload() -> bool:
    """True when this llama-cpp-python build can offload layers to a GPU."""
    return bool(llama_lib.llama_supports_gpu_offload())


# -- ggml's registry, read through ctypes ---------------------------------------------------------
class _GGMLFeature(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


def _ggml_library(lib_dir: Path) -> ctypes.CDLL:
    """The bundled libggml that libllama already loaded (the same handle, so the same registry)."""
    names = {"win32": ("ggml.dll", "libggml.dll"), "darwin": ("libggml.dylib", "libggml.so")}
    for name in names.get(sys.platform, ("libggml.so",)):
        if (lib_dir / name).exists():
            lib = ctypes.CDLL(str(lib_dir / name))
            break
    else:
        raise OSError(f"no libggml in {lib_dir}")
    void_p, size_t, text = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    signatures = {
        "ggml_backend_dev_count": ([], size_t), "ggml_backend_dev_get": ([size_t], void_p),
        "ggml_backend_dev_name": ([void_p], text), "ggml_backend_dev_description": ([void_p], text),
        "ggml_backend_dev_type": ([void_p], ctypes.c_int), "ggml_backend_dev_backend_reg": ([void_p], void_p),
        "ggml_backend_dev_memory": ([void_p, ctypes.POINTER(size_t), ctypes.POINTER(size_t)], None),
        "ggml_backend_reg_count": ([], size_t), "ggml_backend_reg_get": ([size_t], void_p),
        "ggml_backend_reg_name": ([void_p], text), "ggml_backend_reg_get_proc_address": ([void_p, text], void_p),
    }
    for fn, (args, result) in signatures.items():
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = result
    return lib


def _reg_features(lib: ctypes.CDLL, reg: int) -> dict[str, str]:
    """``ggml_backend_get_features`` of a backend registry: the CPU features its kernels use."""
    address = lib.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_get_features")
    if not address:
        return {}
    get = ctypes.CFUNCTYPE(ctypes.POINTER(_GGMLFeature), ctypes.c_void_p)(address)
    features, i = {}, 0
    array = get(reg)
    while array and array[i].name:
        features[array[i].name.decode()] = (array[i].value or b"").decode()
        i += 1
    return features


def _device(lib: ctypes.CDLL, index: int) -> dict[str, Any]:
    """One device of ggml's registry, with its free and total memory."""
    dev = lib.ggml_backend_dev_get(index)
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
    reg = lib.ggml_backend_dev_backend_reg(dev)
    return {
        "name": (lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
        "description": (lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
        "type": _DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "unknown"),
        "backend": (lib.ggml_backend_reg_name(reg) or b"").decode() if reg else "",
        "free": int(free.value), "total": int(total.value)}


def backend_report() -> dict[str, Any]:
    """What this llama.cpp build is and sees, as plain data for :func:`desktop.core.system.hardware.detect`:
    system info, whether GPU offload is possible, the backends and devices (with free and total
    memory) from ggml's registry, the CPU backend's features and any ``libggml-cpu-*`` variants."""
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libraries = sorted(p.name for p in lib_dir.iterdir()) if lib_dir.is_dir() else []
    variants = sorted({re.sub(r"\.(so|dylib|dll).*$", "", n) for n in libraries if re.match(r"(lib)?ggml-cpu-", n)})
    report: dict[str, Any] = {
        "llama_cpp_python": LLAMA_CPP_VERSION, "system_info": system_info(),
        "gpu_offload": supports_gpu_offload(),  # also loads dynamic backends when the build has them
        "library_dir": str(lib_dir), "libraries": libraries, "cpu_variants": variants,
        "backends": [], "devices": [], "cpu_backend_features": {}, "error": ""}
    try:
        lib = _ggml_library(lib_dir)
        for i in range(lib.ggml_backend_reg_count()):
            reg = lib.ggml_backend_reg_get(i)
            name = (lib.ggml_backend_reg_name(reg) or b"").decode()
            report["backends"].append(name)
            if name == "CPU":
                report["cpu_backend_features"] = _reg_features(lib, reg)
        for i in range(lib.ggml_backend_dev_count()):
            report["devices"].append(_device(lib, i))
    except (OSError, AttributeError) as exc:
        report["error"] = f"ggml's device list could not be read: {exc}"
    return report
