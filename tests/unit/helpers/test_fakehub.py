"""The fake Hub itself: what it serves, and each misbehaviour switch, seen from a plain HTTP client."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from pathlib import Path

import pytest

from tests.helpers.fakehub import HOSTILE_NAMES, SMOL_FILE, SMOL_REPO, FakeHub

DATA = bytes(range(256)) * 400  # 102,400 bytes


def fetch(hub: FakeHub, path: str, method: str = "GET", headers: dict[str, str] | None = None,
          timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; a cut body comes back as what arrived before the cut."""
    conn = http.client.HTTPConnection(hub.url.removeprefix("http://"), timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        try:
            body = response.read()
        except http.client.IncompleteRead as cut:
            body = cut.partial
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    fake_hub.add_repo("test/data", {"d.gguf": DATA, "README.md": b"# hi"})
    return fake_hub


def file_path(name: str = "d.gguf", repo: str = "test/data", rev: str = "main") -> str:
    return f"/{repo}/resolve/{rev}/{name}"


def test_serves_the_real_starter_model_with_hub_headers(fake_hub: FakeHub, starter_model: Path) -> None:
    status, headers, _ = fetch(fake_hub, file_path(SMOL_FILE, SMOL_REPO), "HEAD")
    assert status == 200
    assert int(headers["content-length"]) == int(headers["x-linked-size"]) == starter_model.stat().st_size
    assert headers["accept-ranges"] == "bytes" and len(headers["x-repo-commit"]) == 40
    status, headers, body = fetch(fake_hub, file_path(SMOL_FILE, SMOL_REPO), headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == starter_model.read_bytes()[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{starter_model.stat().st_size}"
    assert fake_hub.served_ranges(SMOL_FILE) == [(1000, 2000)]
    assert fake_hub.requests[-1].range == "bytes=1000-1999"


def test_model_info_lists_sizes_and_sha256_only_with_blobs(hub: FakeHub) -> None:
    _, _, body = fetch(hub, "/api/models/test/data?blobs=true")
    info = json.loads(body)
    sibling = {s["rfilename"]: s for s in info["siblings"]}
    assert sibling["d.gguf"]["lfs"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert sibling["d.gguf"]["size"] == len(DATA) and "lfs" not in sibling["README.md"]
    plain = json.loads(fetch(hub, "/api/models/test/data")[2])
    assert "size" not in plain["siblings"][0]
    assert fetch(hub, f"/api/models/test/data/revision/{info['sha']}")[0] == 200
    assert fetch(hub, "/api/models/test/data/revision/" + "0" * 40)[1]["x-error-code"] == "RevisionNotFound"
    assert fetch(hub, "/api/models/no/such")[1]["x-error-code"] == "RepoNotFound"


def test_search_filters_sorts_and_pages(hub: FakeHub) -> None:
    hub.add_repo("a/liked-GGUF", {"m.gguf": b"GGUF"}, downloads=5, likes=999)
    hub.add_repo("b/not-gguf", {"model.safetensors": b"x"}, downloads=10**9)
    ids = [m["id"] for m in json.loads(fetch(hub, "/api/models?filter=gguf&sort=downloads")[2])]
    assert ids[0] == SMOL_REPO and "b/not-gguf" not in ids
    assert json.loads(fetch(hub, "/api/models?filter=gguf&sort=likes")[2])[0]["id"] == "a/liked-GGUF"
    assert [m["id"] for m in json.loads(fetch(hub, "/api/models?search=LIKED")[2])] == ["a/liked-GGUF"]
    hub.page_size = 2
    _, headers, body = fetch(hub, "/api/models?filter=gguf&limit=3")
    assert len(json.loads(body)) == 2 and 'rel="next"' in headers["link"]
    following = headers["link"].split(";")[0].strip("<>").removeprefix(hub.url)
    assert len(json.loads(fetch(hub, following)[2])) == 1


def test_range_forms_and_if_range(hub: FakeHub) -> None:
    assert fetch(hub, file_path(), headers={"Range": "bytes=100000-"})[2] == DATA[100000:]
    assert fetch(hub, file_path(), headers={"Range": "bytes=-10"})[2] == DATA[-10:]
    assert fetch(hub, file_path(), headers={"Range": f"bytes={len(DATA)}-"})[0] == 416
    etag = fetch(hub, file_path(), "HEAD")[1]["etag"]
    assert fetch(hub, file_path(), headers={"Range": "bytes=5-", "If-Range": etag})[0] == 206
    status, _, body = fetch(hub, file_path(), headers={"Range": "bytes=5-", "If-Range": '"stale"'})
    assert status == 200 and body == DATA
    assert hub.request_headers[-1]["If-Range"] == '"stale"'


def test_cut_at_closes_the_connection_once(hub: FakeHub) -> None:
    hub.misbehave("test/data", "d.gguf", cut_at=70_000, times=1)
    assert fetch(hub, file_path(), "HEAD")[0] == 200  # a HEAD does not use up a body switch
    status, _, body = fetch(hub, file_path())
    assert status == 200 and body == DATA[:70_000]
    assert fetch(hub, file_path(), headers={"Range": "bytes=70000-"})[2] == DATA[70_000:]
    assert hub.served_ranges("d.gguf") == [(0, 70_000), (70_000, len(DATA))]


def test_ignore_range_and_flip_byte(hub: FakeHub) -> None:
    hub.misbehave(filename="d.gguf", ignore_range=True, flip_byte=3)
    status, _, body = fetch(hub, file_path(), headers={"Range": "bytes=10-"})
    assert status == 200 and len(body) == len(DATA) and body != DATA
    assert body[:3] == DATA[:3] and body[3] == DATA[3] ^ 0xFF and body[4:] == DATA[4:]
    hub.behave()
    assert fetch(hub, file_path(), headers={"Range": "bytes=10-"})[0] == 206


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500])
def test_forced_status_for_a_file_the_api_or_everything(hub: FakeHub, status: int) -> None:
    hub.misbehave("test/data", "d.gguf", status=status)
    assert fetch(hub, file_path(), "HEAD")[0] == status
    assert fetch(hub, file_path("README.md"))[0] == 200
    hub.behave()
    hub.misbehave(status=status, times=1)
    assert fetch(hub, "/api/models?search=x")[0] == status
    assert fetch(hub, "/api/models?search=x")[0] == 200


def test_stall_and_throttle(hub: FakeHub) -> None:
    hub.misbehave("test/data", stall=3, times=1)
    with pytest.raises(TimeoutError):
        fetch(hub, "/api/models/test/data", timeout=0.3)
    hub.misbehave("test/data", "d.gguf", throttle=200_000)
    began = time.monotonic()
    assert fetch(hub, file_path())[2] == DATA
    assert time.monotonic() - began >= 0.4


def test_replace_file_changes_etag_under_the_same_revision(hub: FakeHub) -> None:
    sha = json.loads(fetch(hub, "/api/models/test/data")[2])["sha"]
    old = fetch(hub, file_path(rev=sha), "HEAD")[1]["etag"]
    new = hub.replace_file("test/data", "d.gguf", DATA[::-1])
    assert new != old and fetch(hub, file_path(rev=sha), "HEAD")[1]["etag"] == new
    assert fetch(hub, file_path(rev=sha), headers={"Range": "bytes=1-", "If-Range": old})[0] == 200


def test_gated_repository_and_tokens(hub: FakeHub) -> None:
    hub.add_repo("g/gated", {"g.gguf": DATA}, gated=True)
    hub.add_token("hf_good", repos=("g/gated",))
    hub.add_token("hf_other", repos=())
    assert fetch(hub, "/api/models/g/gated")[0] == 200
    status, headers, _ = fetch(hub, file_path("g.gguf", "g/gated"))
    assert status == 401 and headers["x-error-code"] == "GatedRepo"
    assert fetch(hub, file_path("g.gguf", "g/gated"), headers={"Authorization": "Bearer hf_other"})[0] == 403
    assert fetch(hub, file_path("g.gguf", "g/gated"), headers={"Authorization": "Bearer hf_bad"})[0] == 401
    assert fetch(hub, file_path("g.gguf", "g/gated"), headers={"Authorization": "Bearer hf_good"})[2] == DATA


def test_hostile_names_are_listed_verbatim(hub: FakeHub) -> None:
    hub.add_repo("evil/repo", {name: b"GGUF" for name in HOSTILE_NAMES})
    names = [s["rfilename"] for s in json.loads(fetch(hub, "/api/models/evil/repo")[2])["siblings"]]
    assert names == list(HOSTILE_NAMES)


def test_redirect_mode_serves_from_a_cdn_path(hub: FakeHub) -> None:
    hub.redirect = True
    status, headers, _ = fetch(hub, file_path(), "HEAD")
    assert status == 302 and headers["x-linked-size"] == str(len(DATA)) and headers["location"].startswith(hub.url + "/cdn/")
    assert fetch(hub, headers["location"].removeprefix(hub.url), headers={"Range": "bytes=2-"})[2] == DATA[2:]
