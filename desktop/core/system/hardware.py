"""What this computer offers a language model: CPU, features, cores, memory, and llama.cpp's backend.

Pure Python (no ``llama_cpp`` import, no Qt): the CPU and memory come from the operating system
(``/proc`` on Linux, ``sysctl`` and ``vm_stat`` on macOS, the Win32 API on Windows, best effort);
the backend part is filled from the plain dict :func:`desktop.core.engine.backends.backend_report` returns,
so this module can run where llama.cpp cannot (tests, the fit estimate before any load).

``detect(backend)`` gives a :class:`HardwareInfo` whose :meth:`HardwareInfo.summary` lines are what
the Hardware page and ``cove hardware`` show.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.core.text.units import format_size

__all__ = ["Backend", "CPUInfo", "Device", "HardwareInfo", "MemoryInfo", "available_ram", "build_kind",
           "cpu_info", "detect", "memory_info", "FEATURES_OF_INTEREST"]

# Features that decide which llama.cpp kernels can run (x86 names as in /proc/cpuinfo; ARM: neon, dotprod...).
FEATURES_OF_INTEREST: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512vbmi",
    "amx_tile", "amx_int8", "amx_bf16", "neon", "dotprod", "i8mm", "sve", "bf16")
# llama.cpp's system-info names -> CPU feature names, to tell a native build from a portable one.
_SYSTEM_INFO_FEATURES: dict[str, str] = {
    "AVX": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "AVX_VNNI": "avx_vnni", "AVX512": "avx512f",
    "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16", "AVX512_VBMI": "avx512vbmi",
    "AMX_INT8": "amx_int8", "NEON": "neon", "DOTPROD": "dotprod", "MATMUL_INT8": "i8mm", "SVE": "sve"}
_ARM_ALIASES = {"asimd": "neon", "asimddp": "dotprod"}


@dataclass(frozen=True)
class CPUInfo:
    """The processor: name, architecture, features of interest, cores."""

    model: str
    arch: str
    features: frozenset[str]
    logical: int
    physical: int
    usable: int  # logical CPUs this process may run on (affinity, containers)


@dataclass(frozen=True)
class MemoryInfo:
    """System memory in bytes; ``available`` is what can be used without swapping (0: unknown)."""

    total: int
    available: int


@dataclass(frozen=True)
class Device:
    """One device llama.cpp's ggml sees (``kind``: cpu, gpu, igpu, accel, meta)."""

    name: str
    description: str
    kind: str
    backend: str
    free: int
    total: int


@dataclass(frozen=True)
class Backend:
    """What the installed llama.cpp was built with and sees, from :func:`backends.backend_report`."""

    name: str                     # CPU, CUDA, Metal, Vulkan, ...
    devices: tuple[Device, ...]
    gpu_offload: bool
    system_info: str
    build: str                    # native, portable, dispatching or unknown
    build_note: str
    cpu_variants: tuple[str, ...] = ()
    cpu_backend_features: dict[str, str] = field(default_factory=dict)
    version: str = ""
    error: str = ""

    @classmethod
    def from_report(cls, report: dict[str, Any], cpu: CPUInfo | None = None) -> Backend:
        """Build from the dict :func:`desktop.core.engine.backends.backend_report` returns."""
        devices = tuple(Device(str(d.get("name", "")), str(d.get("description", "")), str(d.get("type", "")),
                               str(d.get("backend", "")), int(d.get("free", 0)), int(d.get("total", 0)))
                        for d in report.get("devices", []))
        gpus = [d for d in devices if d.kind in ("gpu", "igpu")]
        name = gpus[0].backend if gpus else "CPU"
        build, note = build_kind(report, cpu or cpu_info())
        return cls(name, devices, bool(report.get("gpu_offload")), str(report.get("system_info", "")), build, note,
                   tuple(report.get("cpu_variants", [])), dict(report.get("cpu_backend_features", {})),
                   str(report.get("llama_cpp_python", "")), str(report.get("error", "")))

    @property
    def gpus(self) -> tuple[Device, ...]:
        """The GPU devices (discrete and integrated)."""
        return tuple(d for d in self.devices if d.kind in ("gpu", "igpu"))


def _system_info_features(system_info: str) -> set[str]:
    return {_SYSTEM_INFO_FEATURES[k] for k, v in re.findall(r"(\w+) = (\d+)", system_info)
            if v == "1" and k in _SYSTEM_INFO_FEATURES}


def build_kind(report: dict[str, Any], cpu: CPUInfo) -> tuple[str, str]:
    """Which llama.cpp CPU build this is: ``dispatching`` (one ``libggml-cpu-*`` per CPU generation,
    chosen at start), ``native`` (compiled for exactly this CPU's instruction set) or ``portable``
    (a baseline such as AVX2 that leaves features of this CPU unused); with a sentence saying why."""
    variants = list(report.get("cpu_variants", []))
    if variants:
        used = report.get("cpu_backend_features", {})
        chosen = ", ".join(f"{k}" for k, v in used.items() if v == "1") or "?"
        return "dispatching", f"{len(variants)} CPU variants, picked at start for this CPU (uses {chosen})"
    built = _system_info_features(str(report.get("system_info", "")))
    if not built:
        return "unknown", "llama.cpp did not report its CPU features"
    tracked = set(_SYSTEM_INFO_FEATURES.values())
    unused = sorted((cpu.features & tracked) - built)
    foreign = sorted(built - cpu.features) if cpu.features else []
    if foreign:
        return "native", "built for another CPU (uses " + ", ".join(foreign) + ", which this CPU lacks)"
    if unused:
        return "portable", "a baseline build; this CPU also has " + ", ".join(unused) + ", unused"
    return "native", "built for this CPU's instruction set (-march=native or equivalent)"


@dataclass(frozen=True)
class HardwareInfo:
    """The whole picture: CPU, memory and (when llama.cpp was asked) the backend."""

    cpu: CPUInfo
    memory: MemoryInfo
    backend: Backend | None = None

    def gpu_free(self) -> int:
        """Free memory of the first GPU llama.cpp sees, in bytes (0: none)."""
        gpus = self.backend.gpus if self.backend else ()
        return gpus[0].free if gpus else 0

    def unified_memory(self) -> bool:
        """True when the GPU shares system memory (Apple Silicon, integrated GPUs)."""
        gpus = self.backend.gpus if self.backend else ()
        return bool(gpus) and (gpus[0].kind == "igpu" or gpus[0].backend.lower() == "metal")

    def summary(self) -> list[str]:
        """Lines for the Hardware page and ``cove hardware``."""
        c, m = self.cpu, self.memory
        shown = [f for f in FEATURES_OF_INTEREST if f in c.features]
        lines = [f"CPU: {c.model} ({c.arch}), {c.physical} cores / {c.logical} threads"
                 + (f", {c.usable} usable here" if c.usable != c.logical else ""),
                 "CPU features: " + (" ".join(shown) or "none of interest detected"),
                 f"Memory: {format_size(m.total)} total, "
                 + (f"{format_size(m.available)} available" if m.available else "available unknown")]
        b = self.backend
        if b is None:
            return lines
        lines.append(f"llama.cpp backend: {b.name}" + (f" (llama-cpp-python {b.version})" if b.version else ""))
        lines.append(f"llama.cpp build: {b.build}: {b.build_note}")
        for d in b.devices:
            memory = f", {format_size(d.free)} of {format_size(d.total)} free" if d.total and d.kind != "cpu" else ""
            lines.append(f"  device {d.name} [{d.kind}, {d.backend}]: {d.description}{memory}")
        lines.append("GPU offload: " + ("possible" if b.gpu_offload else
                                        "not possible (this llama.cpp was built for the CPU only)"))
        if b.error:
            lines.append(f"note: {b.error}")
        lines.append(f"system info: {b.system_info}")
        return lines


# -- the CPU ---------------------------------------------------------------------------------------
def _sysctl(name: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _linux_cpu(text: str) -> tuple[str, set[str], int]:
    model, flags, cores = "", set(), set()
    physical_id = core_id = ""
    for line in text.splitlines() + [""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if not key:  # end of one processor's block
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
        elif key in ("model name", "Hardware", "Model") and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = {_ARM_ALIASES.get(f, f) for f in value.split()}
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            core_id = value
    return model, flags, len(cores)


def _windows_physical_cores() -> int:
    """Count RelationProcessorCore entries of GetLogicalProcessorInformation (best effort)."""
    entry = 32 if ctypes.sizeof(ctypes.c_void_p) == 8 else 24
    size = ctypes.c_ulong(0)
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    kernel32.GetLogicalProcessorInformation(None, ctypes.byref(size))
    buffer = ctypes.create_string_buffer(size.value)
    if not kernel32.GetLogicalProcessorInformation(buffer, ctypes.byref(size)):
        return 0
    offset = ctypes.sizeof(ctypes.c_void_p)  # Relationship follows the ULONG_PTR ProcessorMask
    return sum(1 for i in range(0, size.value, entry)
               if int.from_bytes(buffer.raw[i + offset:i + offset + 4], "little") == 0)


def _windows_cpu() -> tuple[str, set[str], int]:
    model = platform.processor()
    try:
        import winreg  # lazy: the module exists on Windows only

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
            model = str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    except OSError:
        pass
    present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    known = {"sse4_2": 38, "avx": 39, "avx2": 40, "avx512f": 41, "dotprod": 43}
    flags = {name for name, pf in known.items() if present(pf)}
    if "avx2" in flags:
        flags |= {"fma", "f16c"}  # every AVX2 CPU has them; Windows has no flag for either
    if platform.machine().lower() in ("arm64", "aarch64"):
        flags.add("neon")
    try:
        physical = _windows_physical_cores()
    except (AttributeError, OSError):
        physical = 0
    return model, flags, physical


def _macos_cpu() -> tuple[str, set[str], int]:
    model = _sysctl("machdep.cpu.brand_string") or platform.processor()
    flags: set[str] = set()
    if platform.machine() == "arm64":
        flags.add("neon")
        for name, flag in (("FEAT_DotProd", "dotprod"), ("FEAT_I8MM", "i8mm"), ("FEAT_BF16", "bf16")):
            if _sysctl(f"hw.optional.arm.{name}") == "1":
                flags.add(flag)
    else:
        raw = (_sysctl("machdep.cpu.features") + " " + _sysctl("machdep.cpu.leaf7_features")).lower()
        names = {"sse4.2": "sse4_2", "avx1.0": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
                 "avx512f": "avx512f", "avx512vnni": "avx512_vnni"}
        flags = {flag for word, flag in names.items() if word in raw.split()}
    physical = int(_sysctl("hw.physicalcpu") or 0)
    return model, flags, physical


def cpu_info() -> CPUInfo:
    """The CPU's name, architecture, features of interest and core counts."""
    logical = os.cpu_count() or 1
    model, flags, physical = "", set(), 0
    try:
        if sys.platform.startswith("linux"):
            model, flags, physical = _linux_cpu(Path("/proc/cpuinfo").read_text(errors="replace"))
        elif sys.platform == "darwin":
            model, flags, physical = _macos_cpu()
        elif sys.platform == "win32":
            model, flags, physical = _windows_cpu()
    except (OSError, ValueError):
        pass
    features = frozenset(f for f in flags if f in FEATURES_OF_INTEREST)
    return CPUInfo(model or platform.processor() or platform.machine() or "unknown CPU", platform.machine(),
                   features, logical, physical if 0 < physical <= logical else logical, _usable_cpus())


# -- memory -------------------------------------------------------------------------------------------
class _MemoryStatusEx(ctypes.Structure):
    _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]


def _linux_memory(text: str) -> MemoryInfo:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) * 1024
    available = fields.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = fields.get("MemFree", 0) + fields.get("Cached", 0) + fields.get("Buffers", 0)
    return MemoryInfo(fields.get("MemTotal", 0), available)


def _macos_memory() -> MemoryInfo:
    total = int(_sysctl("hw.memsize") or 0)
    try:
        out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return MemoryInfo(total, 0)
    size = re.search(r"page size of (\d+) bytes", out)
    pages = {k.strip(): int(v.strip().rstrip(".")) for k, v in re.findall(r"^(Pages [^:]+):\s+(\d+)\.?$", out, re.M)}
    free = sum(pages.get(f"Pages {k}", 0) for k in ("free", "inactive", "speculative", "purgeable"))
    return MemoryInfo(total, free * int(size.group(1)) if size else 0)


def memory_info() -> MemoryInfo:
    """Total and available system memory in bytes (0 where the system does not say)."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_memory(Path("/proc/meminfo").read_text())
        if sys.platform == "darwin":
            return _macos_memory()
        if sys.platform == "win32":
            status = _MemoryStatusEx()
            status.dwLength = ctypes.sizeof(_MemoryStatusEx)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
                return MemoryInfo(int(status.ullTotalPhys), int(status.ullAvailPhys))
    except (OSError, ValueError, AttributeError):
        pass
    return MemoryInfo(0, 0)


def available_ram() -> int:
    """Bytes of memory available now without swapping (0: unknown)."""
    return memory_info().available


def detect(backend: dict[str, Any] | None = None) -> HardwareInfo:
    """Everything known about this machine; ``backend`` is :func:`backends.backend_report`'s dict."""
    cpu = cpu_info()
    return HardwareInfo(cpu, memory_info(), Backend.from_report(backend, cpu) if backend is not None else None)
