"""``cove hardware [--json]``: the CPU, memory and llama.cpp build Cove runs on."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from desktop.core.system.hardware import detect
from desktop.core.system.paths import AppPaths


def add_hardware_arguments(hardware: argparse.ArgumentParser) -> None:
    """The arguments of ``cove hardware``."""
    hardware.add_argument("--json", action="store_true", help="print the raw report as JSON")


def cmd_hardware(args: argparse.Namespace, paths: AppPaths, out: TextIO | None = None) -> int:  # noqa: ARG001
    """Print the CPU, memory and llama.cpp backend report (``--json``: the raw data)."""
    out = out or sys.stdout  # resolved at call time (tests capture sys.stdout)
    # lazy: desktop.core.engine.backends imports llama_cpp, which only this command (and chat) needs
    from desktop.core.engine.backends import backend_report

    report = backend_report()
    if args.json:
        out.write(json.dumps({"backend": report, "summary": detect(report).summary()}, indent=1) + "\n")
    else:
        out.write("\n".join(detect(report).summary()) + "\n")
    return 0
