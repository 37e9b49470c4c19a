"""Runs ``python -m llama_cpp.server`` with llama.cpp's weight repacking off.

On Xeons with AMX (these test machines), llama.cpp's repacked weights crash on the first
multi-token prompt (the shared docs, environment.md), and llama-cpp-python's server has no option
to turn repacking off. Its model is made with ``llama_model_default_params()``, so this launcher
wraps that factory (as Cove's own loader does) and then runs the server's ``__main__`` unchanged.
Usage: ``python llama_server_launcher.py SERVER-ARGS...``
"""

from __future__ import annotations

import runpy
import sys

import llama_cpp.llama_cpp as llama_lib

_default = llama_lib.llama_model_default_params


def _without_repacking():
    params = _default()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    llama_lib.llama_model_default_params = _without_repacking
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__")
