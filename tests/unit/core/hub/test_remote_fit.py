"""Fit verdicts for files on the (fake) Hub, from their GGUF header fetched by range: the same
estimate and verdict as fit.py gives for the same file on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.core.engine.loader import ModelFileError, check_fit
from desktop.core.hub import remote_fit
from desktop.core.hub.client import HubClient
from desktop.core.hub.remote_fit import fit_estimate, fit_verdict, remote_header, remote_info
from desktop.core.models.fit import RUNS_WELL, TIGHT, WILL_NOT_FIT, estimate, verdict
from desktop.core.models.gguf import GGUFError, GGUFHeaderIncomplete, read_gguf, read_gguf_header
from desktop.core.models.names import group_files
from desktop.core.system.hardware import CPUInfo, HardwareInfo, MemoryInfo, detect
from tests.helpers import gguf_builder as gb
from tests.helpers.fakehub import GEMMA_FILE, GEMMA_REPO, SMOL_FILE, SMOL_REPO, FakeHub

MIB = 1 << 20
AVX2 = frozenset({"avx", "avx2", "fma", "f16c"})


def machine(available: int) -> HardwareInfo:
    return HardwareInfo(CPUInfo("test", "x86_64", AVX2, 4, 4, 4), MemoryInfo(available * 2, available))


def only_choice(client: HubClient, repo_id: str):
    [choice] = group_files(client.repo(repo_id).files)
    return choice


@pytest.mark.parametrize(("fixture", "repo_id", "filename"), [("fake_hub", SMOL_REPO, SMOL_FILE),
                                                              ("fake_hub_gemma", GEMMA_REPO, GEMMA_FILE)])
def test_real_models_judged_over_the_hub_as_on_disk(request: pytest.FixtureRequest, fixture: str, repo_id: str,
                                                    filename: str) -> None:
    hub: FakeHub = request.getfixturevalue(fixture)
    local_path = hub.repos[repo_id].files[filename].path
    local = read_gguf(local_path)
    client = HubClient()
    remote = remote_info(client, only_choice(client, repo_id))
    assert (remote.metadata, remote.tensors, remote.data_offset, remote.file_size) == \
        (local.metadata, local.tensors, local.data_offset, local.file_size)
    sent = sum(end - start for start, end in hub.served_ranges(filename))
    assert sent < local.data_offset + 2 * MIB, "only the header is fetched, never the weights"
    for n_ctx in (512, 4096, local.context_length or 2048):
        for hardware in (detect(), machine(64 << 30), machine(200 * MIB), machine(10 * MIB)):
            options = {"cache_type": "f16", "flash_attn": False, "repack": True, "cpu_features": hardware.cpu.features}
            on_disk = estimate(local, n_ctx, 0, **options)
            assert fit_estimate(remote, hardware, n_ctx) == on_disk
            assert fit_verdict(remote, hardware, n_ctx) == verdict(on_disk, hardware)
    assert fit_verdict(remote, machine(64 << 30), 2048)[0] == RUNS_WELL
    assert fit_verdict(remote, machine(10 * MIB), 2048)[0] == WILL_NOT_FIT


def test_verdict_agrees_with_the_loaders_refusal(fake_hub: FakeHub, starter_model: Path) -> None:
    client = HubClient()
    remote = remote_info(client, only_choice(client, SMOL_REPO))
    local = read_gguf(starter_model)
    need = fit_estimate(remote, machine(64 << 30), 4096).total
    for available in (need // 2, int(need / 0.8), need * 2):
        label, reason = fit_verdict(remote, machine(available), 4096)
        assert label in (RUNS_WELL, TIGHT, WILL_NOT_FIT) and "memory" in reason
        try:
            check_fit(local, machine(available), n_ctx=4096)
            refused = False
        except ModelFileError:
            refused = True
        assert refused == (label == WILL_NOT_FIT)


def test_header_read_grows_and_is_bounded(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    client = HubClient()
    file = client.repo(SMOL_REPO).files[0]
    ranges = fake_hub.served_ranges(SMOL_FILE)
    remote_header(client, file)
    ranges = fake_hub.served_ranges(SMOL_FILE)[len(ranges):]
    assert ranges[0] == (0, MIB) and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])), ranges
    monkeypatch.setattr(remote_fit, "MAX_HEADER", MIB)
    with pytest.raises(GGUFError, match=r"header is larger than 1\.05 MB"):  # 1 MiB
        remote_header(client, file)


def test_server_ignoring_range_or_changing_file_midway(fake_hub: FakeHub, starter_model: Path) -> None:
    client = HubClient()
    file = client.repo(SMOL_REPO).files[0]
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, ignore_range=True)
    assert remote_header(client, file).tensors == read_gguf(starter_model).tensors
    assert all(entry.sent < file.size for entry in fake_hub.requests if entry.path.endswith(SMOL_FILE))
    fake_hub.behave()
    old_prefix, etag = remote_fit._extend(client, file, b"", 1000, "")
    fake_hub.replace_file(SMOL_REPO, SMOL_FILE, b"\x00" * 5000)
    data, new_etag = remote_fit._extend(client, file, old_prefix, 2000, etag)
    assert data == b"\x00" * 2000 and new_etag != etag  # never a splice of two versions


def test_not_a_model_or_truncated(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("o/bad", {"text.gguf": b"hello, this is not a model" * 10})
    client = HubClient()
    with pytest.raises(GGUFError, match="not a GGUF model file"):
        remote_info(client, only_choice(client, "o/bad"))
    short = gb.build_gguf(tmp_path / "short.gguf", [gb.arch()], [("w", (32, 32), 0)], size=200)
    fake_hub.add_repo("o/short", {"short.gguf": short})
    with pytest.raises(GGUFError, match="truncated"):
        remote_info(client, only_choice(client, "o/short"))


def _llama(extra: list) -> list:
    return [gb.arch(), ("llama.block_count", gb.U32, 2), ("llama.embedding_length", gb.U32, 64),
            ("llama.attention.head_count", gb.U32, 4), ("llama.context_length", gb.U32, 2048), *extra]


def test_split_model_headers_are_merged(fake_hub: FakeHub, tmp_path: Path) -> None:
    tensors = [("token_embd.weight", (64, 100), 0), ("blk.0.attn_q.weight", (64, 64), 0),
               ("blk.1.attn_q.weight", (64, 64), 0), ("output.weight", (64, 100), 0)]
    split = [("split.count", gb.U16, 2), ("split.tensors.count", gb.I32, 4)]
    one = gb.build_gguf(tmp_path / "one.gguf", _llama([]), tensors)
    first = gb.build_gguf(tmp_path / "m-00001-of-00002.gguf", _llama([("split.no", gb.U16, 0), *split]), tensors[:2])
    second = gb.build_gguf(tmp_path / "m-00002-of-00002.gguf", [("split.no", gb.U16, 1), *split], tensors[2:])
    fake_hub.add_repo("o/split", {p.name: p for p in (first, second)})
    client = HubClient()
    choice = only_choice(client, "o/split")
    merged = remote_info(client, choice)
    whole = read_gguf(one)
    # offsets are each part's own
    assert [(t.name, t.shape, t.nbytes) for t in merged.tensors] == [(t.name, t.shape, t.nbytes) for t in whole.tensors]
    assert merged.path.name == "m-00001-of-00002.gguf"
    assert merged.file_size == first.stat().st_size + second.stat().st_size
    hardware = machine(8 << 30)
    assert fit_estimate(merged, hardware, 1024) == fit_estimate(whole, hardware, 1024)
    with pytest.raises(GGUFError, match="architecture"):
        read_gguf(second)  # on disk, a later part alone is still refused
    fake_hub.add_repo("o/partial", {first.name: first})
    with pytest.raises(GGUFError, match="1 of its 2 parts"):
        remote_info(client, only_choice(client, "o/partial"))


def test_read_gguf_header_from_a_prefix(starter_model: Path) -> None:
    local = read_gguf(starter_model)
    size = starter_model.stat().st_size
    with starter_model.open("rb") as handle:
        prefix = handle.read(local.data_offset)
    info = read_gguf_header(prefix, size, starter_model.name)
    assert (info.metadata, info.tensors, info.file_size) == (local.metadata, local.tensors, size)
    with pytest.raises(GGUFHeaderIncomplete) as short:
        read_gguf_header(prefix[:100_000], size, starter_model.name)
    assert short.value.needed > 100_000 and short.value.have == 100_000
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf_header(prefix, local.data_offset + 10, starter_model.name)  # tensors beyond the end
