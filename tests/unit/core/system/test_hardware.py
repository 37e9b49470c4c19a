"""Hardware detection on this machine, the parsers behind it, and the llama.cpp backend report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from desktop.core.system import hardware
from desktop.core.system.hardware import Backend, CPUInfo, build_kind, detect

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
physical id\t: 0
core id\t\t: 0

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
physical id\t: 0
core id\t\t: 0

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
physical id\t: 0
core id\t\t: 1
"""
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp sve i8mm\nCPU part\t: 0xd40\n\n"
NATIVE_INFO = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 | REPACK = 1 |"
PORTABLE_INFO = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | REPACK = 1 |"


def cpu(*features: str) -> CPUInfo:
    return CPUInfo("test CPU", "x86_64", frozenset(features), 8, 4, 8)


def test_this_machine_is_detected() -> None:
    info = detect()
    assert info.cpu.logical == os.cpu_count()
    assert 1 <= info.cpu.physical <= info.cpu.logical
    assert info.cpu.model and info.cpu.model != "unknown CPU"
    assert info.memory.total > 0
    assert 0 < info.memory.available <= info.memory.total
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        flags = Path("/proc/cpuinfo").read_text()
        assert ("avx2" in info.cpu.features) == (" avx2" in flags)
    lines = info.summary()
    assert lines[0].startswith("CPU: ") and "cores" in lines[0]
    assert any(line.startswith("Memory: ") and "GB available" in line for line in lines)


def test_backend_report_on_this_build() -> None:
    from desktop.core.engine.backends import backend_report, supports_gpu_offload, system_info

    report = backend_report()
    assert report["error"] == ""
    assert report["system_info"] == system_info()
    assert report["gpu_offload"] == supports_gpu_offload()
    assert "CPU" in report["backends"]
    kinds = {d["type"] for d in report["devices"]}
    assert "cpu" in kinds
    for device in report["devices"]:
        assert device["name"] and device["total"] >= device["free"] >= 0
    info = detect(report)
    assert info.backend is not None
    assert info.backend.build in ("native", "portable", "dispatching")
    text = "\n".join(info.summary())
    assert "llama.cpp build: " in text and "llama.cpp backend: " in text
    if not report["gpu_offload"]:  # a CPU-only build says so and why
        assert info.backend.name == "CPU"
        assert "GPU offload: not possible (this llama.cpp was built for the CPU only)" in text
        assert info.gpu_free() == 0


def test_cove_hardware_command(capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.__main__ import main

    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "llama.cpp build: " in out and "GPU offload: " in out


def test_linux_cpuinfo_parsing_counts_physical_cores() -> None:
    model, flags, physical = hardware._linux_cpu(CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx512f", "amx_int8", "amx_tile", "avx2"} <= flags
    assert physical == 2  # three logical CPUs on two cores
    _, arm, _ = hardware._linux_cpu(ARM_CPUINFO)
    assert {"neon", "dotprod", "i8mm", "sve"} <= arm


def test_meminfo_parsing() -> None:
    text = "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
    memory = hardware._linux_memory(text)
    assert (memory.total, memory.available) == (24576000 * 1024, 20000000 * 1024)
    old = hardware._linux_memory("MemTotal: 100 kB\nMemFree: 10 kB\nCached: 20 kB\nBuffers: 5 kB\n")
    assert old.available == 35 * 1024


def test_build_kind_tells_native_portable_and_dispatching_apart() -> None:
    xeon = cpu("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_int8")
    assert build_kind({"system_info": PORTABLE_INFO}, xeon)[0] == "portable"
    assert "avx512f" in build_kind({"system_info": PORTABLE_INFO}, xeon)[1]
    laptop = cpu("avx", "avx2", "fma", "f16c")
    assert build_kind({"system_info": PORTABLE_INFO}, laptop)[0] == "native"
    assert build_kind({"system_info": NATIVE_INFO}, cpu("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni"))[0] \
        == "native"
    kind, note = build_kind({"system_info": PORTABLE_INFO, "cpu_variants": ["libggml-cpu-haswell", "libggml-cpu-zen4"],
                             "cpu_backend_features": {"AVX2": "1", "AVX512": "1"}}, xeon)
    assert kind == "dispatching" and "2 CPU variants" in note and "AVX512" in note
    assert build_kind({"system_info": ""}, xeon)[0] == "unknown"


def test_gpu_backend_from_a_report() -> None:
    report = {"system_info": PORTABLE_INFO, "gpu_offload": True, "llama_cpp_python": "0.3.36",
              "devices": [{"name": "CPU", "description": "cpu", "type": "cpu", "backend": "CPU", "free": 1, "total": 2},
                          {"name": "CUDA0", "description": "NVIDIA H200", "type": "gpu", "backend": "CUDA",
                           "free": 100 << 30, "total": 140 << 30}]}
    backend = Backend.from_report(report, cpu("avx2"))
    assert backend.name == "CUDA" and backend.gpu_offload
    info = hardware.HardwareInfo(cpu("avx2"), hardware.MemoryInfo(32 << 30, 16 << 30), backend)
    assert info.gpu_free() == 100 << 30 and not info.unified_memory()
    text = "\n".join(info.summary())
    assert "device CUDA0 [gpu, CUDA]: NVIDIA H200, 107 GB of 150 GB free" in text
    assert "GPU offload: possible" in text
    metal = dict(report, devices=[{"name": "Metal", "description": "Apple M3", "type": "gpu", "backend": "Metal",
                                   "free": 20 << 30, "total": 24 << 30}])
    assert hardware.HardwareInfo(cpu(), hardware.MemoryInfo(1, 1), Backend.from_report(metal, cpu())).unified_memory()
