"""llama.cpp's backends as :mod:`desktop.core.engine.backends` loads and reports them."""

from __future__ import annotations

from importlib.metadata import version

from desktop.core.engine.backends import BACKENDS_REGISTERED, LLAMA_CPP_VERSION, backend_report


def test_importing_registers_a_backend() -> None:
    # -1 would mean ggml's registry could not be reached; 0 that no model could load.
    assert BACKENDS_REGISTERED >= 1


def test_the_report_names_this_build() -> None:
    report = backend_report()
    assert LLAMA_CPP_VERSION == version("llama-cpp-python") == report["llama_cpp_python"]
    assert len(report["backends"]) >= BACKENDS_REGISTERED and "CPU" in report["backends"]
    assert report["cpu_backend_features"], "the CPU backend lists the features its kernels use"
