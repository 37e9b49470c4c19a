"""HubClient against the fake Hub: the real huggingface_hub code paths, real GGUF bytes, every failure
mapped to a one-sentence HubError."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.hub.client import HubClient, HubError, RemoteFile
from desktop.core.hub.errors import OFFLINE_MESSAGE
from desktop.core.system import network_guard
from tests.conftest import REPO
from tests.helpers.fakehub import HOSTILE_NAMES, SMOL_FILE, SMOL_REPO, FakeHub

DATA = bytes(range(256)) * 64


def smol(client: HubClient) -> RemoteFile:
    return client.repo(SMOL_REPO).files[0]


def test_search_finds_gguf_repositories_sorted_and_paged(fake_hub: FakeHub) -> None:
    for i in range(5):
        fake_hub.add_repo(f"org{i}/Smol-Tiny-{i}-GGUF", {"m-Q8_0.gguf": DATA}, downloads=10 + i, likes=100 - i,
                          last_modified=f"2025-02-0{i + 1}T00:00:00.000Z")
    fake_hub.add_repo("org/smol-safetensors", {"model.safetensors": DATA}, downloads=10**6)
    client = HubClient()  # HF_ENDPOINT, set by the fixture, read at call time
    found = client.search("smol")
    assert found[0].repo_id == SMOL_REPO and found[0].license == "apache-2.0" and found[0].downloads == 50_000
    assert "org/smol-safetensors" not in [r.repo_id for r in found]
    assert client.search("smol", sort="likes")[0].repo_id == SMOL_REPO  # 120 likes
    assert client.search("tiny", sort="likes")[0].repo_id == "org0/Smol-Tiny-0-GGUF"
    assert client.search("tiny", sort="recent")[0].repo_id == "org4/Smol-Tiny-4-GGUF"
    fake_hub.page_size = 2  # the Hub's Link-header paging is followed
    pages = [[r.repo_id for r in client.search("tiny", page=p, per_page=2)] for p in range(3)]
    assert pages == [["org4/Smol-Tiny-4-GGUF", "org3/Smol-Tiny-3-GGUF"],
                     ["org2/Smol-Tiny-2-GGUF", "org1/Smol-Tiny-1-GGUF"], ["org0/Smol-Tiny-0-GGUF"]]
    assert client.search("nothing matches this") == []
    with pytest.raises(ValueError):
        client.search("x", sort="stars")


def test_repo_lists_gguf_files_with_published_sha256(fake_hub: FakeHub, starter_model: Path) -> None:
    fake_hub.add_repo("org/mixed", {"a-Q4_K_M.gguf": DATA, "README.md": b"# hi", "sub/b-Q8_0.GGUF": DATA},
                      gated="auto", license="llama3.2")
    details = HubClient().repo("org/mixed")
    assert [f.filename for f in details.files] == ["a-Q4_K_M.gguf", "sub/b-Q8_0.GGUF"]
    assert details.gated == "auto" and details.license == "llama3.2" and details.rejected == ()
    smol_details = HubClient().repo(SMOL_REPO)
    file = smol_details.files[0]
    assert file.size == starter_model.stat().st_size
    assert file.sha256 == fake_hub.repos[SMOL_REPO].files[SMOL_FILE].sha256
    assert file.revision == smol_details.revision == fake_hub.repos[SMOL_REPO].sha
    assert file.url == f"{fake_hub.url}/{SMOL_REPO}/resolve/{file.revision}/{SMOL_FILE}"


def test_hostile_names_are_rejected_never_returned(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("evil/repo", {**{name: DATA for name in HOSTILE_NAMES}, "fine-Q4_0.gguf": DATA})
    details = HubClient().repo("evil/repo")
    assert [f.filename for f in details.files] == ["fine-Q4_0.gguf"]
    assert sorted(details.rejected) == sorted(HOSTILE_NAMES)


def test_head_and_ranges_of_the_real_model(fake_hub: FakeHub, starter_model: Path) -> None:
    client = HubClient()
    file = smol(client)
    etag, size = client.head(file)
    assert etag == file.sha256 and size == file.size
    with starter_model.open("rb") as handle:
        handle.seek(file.size - 300_000)
        tail = handle.read()
    with client.open_range(file, file.size - 300_000, if_range=etag) as response:
        assert (response.status, response.start, response.total, response.etag) == (206, file.size - 300_000,
                                                                                       file.size, etag)
        assert b"".join(response.iter_chunks(65536)) == tail
    assert fake_hub.request_headers[-1]["If-Range"] == f'"{etag}"'
    with starter_model.open("rb") as handle:
        assert client.read_prefix(file, 4096) == handle.read(4096)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (0, 4096)


def test_changed_etag_or_ignored_range_starts_from_zero(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("org/r", {"m.gguf": DATA})
    client = HubClient()
    file = client.repo("org/r").files[0]
    with client.open_range(file, 100, if_range="an-old-etag") as response:
        assert (response.status, response.start) == (200, 0) and b"".join(response.iter_chunks()) == DATA
    fake_hub.misbehave("org/r", "m.gguf", ignore_range=True)
    with client.open_range(file, 100) as response:
        assert (response.status, response.start, response.total) == (200, 0, len(DATA))
    assert client.read_prefix(file, 10) == DATA[:10]  # the rest is not read


def test_redirect_to_another_host_drops_the_token_and_checks_the_etag_itself(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("org/r", {"m.gguf": DATA})
    fake_hub.add_token("hf_token")
    fake_hub.redirect = True
    client = HubClient(endpoint=fake_hub.url.replace("127.0.0.1", "localhost"), token="hf_token")
    file = client.repo("org/r").files[0]
    assert file.url.startswith("http://localhost")
    etag, _ = client.head(file)
    with client.open_range(file, 1000, if_range=etag) as response:
        assert (response.status, response.start, response.etag) == (206, 1000, etag)
        assert b"".join(response.iter_chunks()) == DATA[1000:]
    cdn = fake_hub.request_headers[-1]
    assert fake_hub.requests[-1].path.startswith("/cdn/") and cdn["Authorization"] == "" and cdn["If-Range"] == ""
    with client.open_range(file, 1000, if_range="stale") as response:
        assert (response.status, response.start) == (200, 0)


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (403, "auth"), (404, "not_found"),
                                              (429, "rate_limited"), (500, "server")])
def test_http_failures_become_one_sentence(fake_hub: FakeHub, status: int, kind: str) -> None:
    client = HubClient()
    file = smol(client)
    fake_hub.misbehave(status=status)
    calls = [lambda: client.search("smol"), lambda: client.repo(SMOL_REPO), lambda: client.head(file),
             lambda: client.read_prefix(file, 100), lambda: client.open_range(file, 10).__enter__()]
    for call in calls:
        before = len(fake_hub.requests)
        with pytest.raises(HubError) as caught:
            call()
        assert len(fake_hub.requests) == before + 1, "one request, no retries"
        error = caught.value
        assert (error.kind, error.status) == (kind, status)
        assert "\n" not in str(error) and str(error).endswith(".") and len(str(error)) < 200


def test_gated_repository_needs_a_token(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("meta/gated", {"g.gguf": DATA}, gated=True)
    fake_hub.add_token("hf_yes", repos=("meta/gated",))
    fake_hub.add_token("hf_no", repos=())
    file = HubClient().repo("meta/gated").files[0]  # the listing is public, as on the Hub
    with pytest.raises(HubError, match="gated: it needs a Hugging Face token") as caught:
        HubClient().head(file)
    assert caught.value.kind == "auth" and caught.value.status == 401
    with pytest.raises(HubError, match="no access to meta/gated"):
        HubClient(token="hf_no").read_prefix(file, 10)
    with pytest.raises(HubError, match="refused the token"):
        HubClient(token="hf_wrong").head(file)
    assert HubClient(token="hf_yes").read_prefix(file, 10) == DATA[:10]
    assert fake_hub.request_headers[-1]["Authorization"] == "Bearer hf_yes"


def test_no_token_is_taken_from_the_machine(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    client = HubClient()
    client.search("smol")
    client.read_prefix(smol(client), 8)
    assert all(headers["Authorization"] == "" for headers in fake_hub.request_headers)


def test_offline_timeouts_and_cuts(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HubError) as caught:
        HubClient(endpoint="http://127.0.0.1:9").search("smol")  # nothing listens there
    assert (caught.value.kind, str(caught.value)) == ("offline", OFFLINE_MESSAGE)
    fake_hub.misbehave(stall=60, times=1)  # the server answers after a minute (or when the test ends)
    with pytest.raises(HubError, match="stopped answering") as caught:
        HubClient(timeout=0.5).repo(SMOL_REPO)
    assert caught.value.kind == "offline"
    assert not fake_hub.settle(timeout=0), "the client waited for the stalled server instead of its own timeout"
    client = HubClient()
    file = smol(client)
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, cut_at=200_000, times=1)
    with pytest.raises(HubError, match="broke off") as caught, client.open_range(file, 0) as response:
        for _ in response.iter_chunks():
            pass
    assert caught.value.kind == "offline"
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE") as caught:
        client.search("smol")
    assert caught.value.kind == "offline"


def test_bad_repository_names(fake_hub: FakeHub) -> None:
    with pytest.raises(HubError, match="not a repository name") as caught:
        HubClient().repo("../../etc")
    assert caught.value.kind == "not_found"
    with pytest.raises(HubError, match="no repository nobody/nothing"):
        HubClient().repo("nobody/nothing")


def test_every_request_is_made_for_a_stated_purpose(fake_hub: FakeHub) -> None:
    log = network_guard.install(network_guard.NetworkLog())
    try:
        client = HubClient()
        client.search("smol")
        file = smol(client)
        client.head(file)
        with client.open_range(file, file.size - 10) as response:
            assert len(b"".join(response.iter_chunks())) == 10
    finally:
        network_guard.uninstall(log)
    purposes = {event.purpose for event in log.events()}
    assert all(event.allowed for event in log.events())
    assert "search the Hugging Face Hub for 'smol'" in purposes


def test_only_hub_imports_huggingface_hub_and_lazily() -> None:
    importers = []
    for path in (REPO / "desktop").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in ("huggingface_hub", "httpx2") for n in names):
                importers.append(path.relative_to(REPO).as_posix())
    # httpx2 is also the MCP SDK's HTTP client: the MCP host reads an HTTP server's refusal (401) from it.
    assert set(importers) == {"desktop/core/hub/client.py", "desktop/core/tools/mcp_host.py"}
    code = "import sys, desktop.core.hub.client, desktop.cli.main; print('huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
