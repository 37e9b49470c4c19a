"""The download pane's fit verdict for the two real models, computed from their GGUF headers read
over the (fake) Hub with the options the pane uses (Cove's default acceleration settings: flash
attention, f16 KV cache, automatic GPU layers), against the resident memory a real process gains by
loading them the same way at the context Cove would use (prompt filling it, so the attention step
runs at full width): within 20 %."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from desktop.cli.bench_measure import measure_memory
from desktop.core.engine.probe import probe_model
from desktop.core.hub.client import HubClient
from desktop.core.hub.remote_fit import default_context, fit_estimate, fit_verdict, remote_info
from desktop.core.models.names import group_files
from desktop.core.system.hardware import detect
from desktop.core.system.settings import AccelerationSettings
from tests.helpers.fakehub import GEMMA_FILE, GEMMA_REPO, SMOL_FILE, SMOL_REPO

pytestmark = [pytest.mark.e2e,
              pytest.mark.timeout(900),  # both models fetched from the fake Hub, then loaded in child processes: minutes
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")]
TOLERANCE = 0.20
MIB = 1 << 20


def test_remote_fit_verdict_matches_resident_memory(fake_hub_gemma, starter_model: Path, gemma_model: Path,
                                                    tmp_path: Path) -> None:
    client = HubClient()
    hardware = detect()
    acc = AccelerationSettings()  # what the pane judges with unless the person changed it
    assert acc.kv_cache_type == "f16"  # the memory child loads with an f16 cache
    threads = len(os.sched_getaffinity(0))
    for repo_id, filename, local in ((SMOL_REPO, SMOL_FILE, starter_model), (GEMMA_REPO, GEMMA_FILE, gemma_model)):
        choice = next(c for c in group_files(client.repo(repo_id).files) if c.name == filename)
        info = remote_info(client, choice)
        n_ctx = default_context(info)
        verdict = probe_model(local, threads=threads, cache_file=tmp_path / "probes.json")
        repack = bool(verdict.config.get("use_extra_bufts"))
        options = {"gpu_layers": acc.gpu_layers, "cache_type": acc.kv_cache_type, "flash_attn": acc.flash_attention}
        est = fit_estimate(info, hardware, n_ctx, repack=repack, **options)
        label, reason = fit_verdict(info, hardware, n_ctx, repack=repack, **options)
        report = measure_memory(local, n_ctx, repack, threads, fill=True, flash=acc.flash_attention)
        assert report, f"the memory child failed for {filename}"
        measured = report["after"]["VmRSS"] - report["base"]["VmRSS"]
        error = (est.total - measured) / measured
        print(f"\n{filename}: over the Hub at n_ctx {n_ctx}: estimate {est.total / MIB:.1f} MiB, "
              f"measured {measured / MIB:.1f} MiB ({100 * error:+.1f} %); verdict {label!r}: {reason}")
        assert abs(error) <= TOLERANCE, (filename, est, measured)
        assert label == "runs well", reason  # a few hundred MB on a 24 GiB machine
