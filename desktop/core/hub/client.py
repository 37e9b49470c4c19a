"""The Hugging Face Hub, for the download pane and ``cove models``: search, a repository's GGUF
files, and byte ranges of a file, through huggingface_hub.

This is the only module that imports huggingface_hub (lazily: ``cove`` start-up does not pay for
it). Every request runs inside ``network_purpose(...)`` naming what the person asked for, passes the
token explicitly (never a token file or ``login()``), goes to ``HubClient.endpoint`` (``HF_ENDPOINT``
read at call time, else huggingface.co), and every failure becomes a :class:`HubError` whose text is
one sentence a person understands. Names in a listing that could escape the models folder are
refused (``RepoDetails.rejected``), never returned.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from desktop.core.hub.errors import HubError, describe_failure
from desktop.core.models.names import safe_relative_path
from desktop.core.system.network_guard import network_purpose

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # before huggingface_hub is imported: Xet needs the real Hub
# No telemetry, ever: huggingface_hub 2.x otherwise fetches {endpoint}/api/agent-harnesses while it
# builds its user agent, and reports usage on some calls.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def _no_telemetry() -> None:
    """Switch huggingface_hub's telemetry off even when it was imported before this module."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_DISABLE_TELEMETRY = True

__all__ = ["HubError", "RepoSummary", "RemoteFile", "RepoDetails", "RangeResponse", "HubClient",
           "DEFAULT_ENDPOINT", "SORTS"]

DEFAULT_ENDPOINT = "https://huggingface.co"
SORTS = {"downloads": "downloads", "likes": "likes", "recent": "lastModified"}
_EXPAND = ["downloads", "likes", "lastModified", "gated", "tags"]
_MAX_PAGES = 50  # Link pages followed for one search, at most


@dataclass(frozen=True)
class RepoSummary:
    """One search result."""

    repo_id: str
    downloads: int
    likes: int
    last_modified: str
    gated: bool
    license: str


@dataclass(frozen=True)
class RemoteFile:
    """A GGUF file of a repository at one commit; ``filename`` is a safe relative path."""

    repo_id: str
    filename: str
    revision: str
    size: int
    sha256: str  # published by the Hub for LFS files; "" when none is
    url: str


@dataclass(frozen=True)
class RepoDetails:
    """A repository at its current commit: its GGUF files and the names Cove refused."""

    repo_id: str
    revision: str
    license: str
    gated: bool | str
    files: tuple[RemoteFile, ...]
    rejected: tuple[str, ...] = ()


@dataclass
class RangeResponse:
    """An open GET of a file from ``start`` (0 when the server ignored the Range: status 200)."""

    status: int
    etag: str
    start: int
    total: int
    _response: Any = field(repr=False, default=None)
    _what: str = field(repr=False, default="")

    def iter_chunks(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The body, ``chunk`` bytes at a time; a cut connection or a stall raises HubError("offline")."""
        try:
            yield from self._response.iter_bytes(chunk)
        except Exception as exc:  # every transport failure becomes a sentence
            raise describe_failure(exc, self._what, during_body=True) from exc


def _normal_etag(value: str | None) -> str:
    """An ETag without quotes or the weak marker, as huggingface_hub stores it."""
    return re.sub(r'^W/', "", value or "").strip('"')


def _content_range(value: str) -> tuple[int, int] | None:
    """(start, total) from ``bytes START-END/TOTAL``."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", value or "")
    return (int(match[1]), int(match[3])) if match else None


class HubClient:
    """The Hub at ``endpoint`` (None: ``HF_ENDPOINT`` at call time, else huggingface.co), as ``token``."""

    def __init__(self, endpoint: str | None = None, token: str | None = None, timeout: float = 20.0) -> None:
        self._endpoint = endpoint
        self.token = token or None
        self.timeout = timeout
        _no_telemetry()

    @property
    def endpoint(self) -> str:
        return (self._endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    def _token(self) -> str | bool:
        return self.token or False  # False: never read a token from the machine

    def _headers(self) -> dict[str, str]:
        # lazy: huggingface_hub takes long to import; only a Hub call needs it
        from huggingface_hub.utils import build_hf_headers

        return build_hf_headers(token=self._token(), library_name="cove")

    def _get_json(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, str | None]:
        """One GET without huggingface_hub's minute-long retries; (JSON body, next page URL)."""
        # lazy: huggingface_hub takes long to import; only a Hub call needs it
        from huggingface_hub.utils import get_session, hf_raise_for_status

        response = get_session().get(url, params=params, headers=self._headers(), timeout=self.timeout)
        hf_raise_for_status(response)
        return response.json(), response.links.get("next", {}).get("url")

    # -- search and listing ------------------------------------------------------------------------
    def search(self, query: str, sort: str = "downloads", page: int = 0, per_page: int = 20) -> list[RepoSummary]:
        """GGUF repositories matching ``query``, most downloaded / liked / recent first; page ``page``."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        wanted = (max(page, 0) + 1) * max(per_page, 1)
        params = {"search": query, "filter": "gguf", "sort": SORTS[sort], "direction": "-1",
                  "limit": wanted, "expand": _EXPAND}
        items: list[Any] = []
        what = f"search the Hugging Face Hub for {query!r}"
        try:
            with network_purpose(what):
                url: str | None = f"{self.endpoint}/api/models"
                for _ in range(_MAX_PAGES):
                    if url is None or len(items) >= wanted:
                        break
                    body, url = self._get_json(url, params)
                    params = None  # the next-page link carries them
                    if not isinstance(body, list):
                        raise ValueError("search results are not a list")
                    items.extend(body)
            return [self._summary(item) for item in items[wanted - per_page:wanted]]
        except Exception as exc:  # every failure becomes a HubError with a sentence
            raise describe_failure(exc, what) from exc

    @staticmethod
    def _summary(item: dict[str, Any]) -> RepoSummary:
        tags = item.get("tags") or []
        license_ = next((t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("license:")), "")
        return RepoSummary(str(item["id"]), int(item.get("downloads") or 0), int(item.get("likes") or 0),
                           str(item.get("lastModified") or item.get("createdAt") or ""),
                           bool(item.get("gated")), license_)

    def repo(self, repo_id: str) -> RepoDetails:
        """The GGUF files of ``repo_id`` at its current commit, with sizes and published sha256."""
        # lazy: huggingface_hub takes long to import; only a Hub call needs it
        from huggingface_hub import HfApi, hf_hub_url

        what = f"list the files of {repo_id}"
        try:
            with network_purpose(what):
                info = HfApi(endpoint=self.endpoint, token=self._token(), library_name="cove").model_info(
                    repo_id, files_metadata=True, timeout=self.timeout, token=self._token())
            revision = str(info.sha or "")
            if not re.fullmatch(r"[0-9a-f]{40}", revision):
                raise ValueError("the repository has no commit id")
            files, rejected = [], []
            for sibling in info.siblings or []:
                name = sibling.rfilename
                if not name.lower().endswith(".gguf"):
                    continue
                try:
                    safe_relative_path(name)
                except ValueError:
                    rejected.append(name)
                    continue
                lfs = sibling.lfs
                size = int(sibling.size if sibling.size is not None else (lfs.size if lfs else 0))
                url = hf_hub_url(repo_id, name, revision=revision, endpoint=self.endpoint)
                files.append(RemoteFile(repo_id, name, revision, size, str(lfs.sha256) if lfs else "", url))
            license_ = getattr(info.card_data, "license", None) if info.card_data else None
            if not license_:
                license_ = self._summary({"id": repo_id, "tags": info.tags}).license
            return RepoDetails(repo_id, revision, str(license_ or ""), info.gated or False, tuple(files),
                               tuple(rejected))
        except Exception as exc:  # every failure becomes a HubError with a sentence
            raise describe_failure(exc, what, repo_id=repo_id) from exc

    # -- file bytes --------------------------------------------------------------------------------
    def head(self, file: RemoteFile) -> tuple[str, int]:
        """(ETag, size) of ``file`` now, from a HEAD of its URL."""
        # lazy: huggingface_hub takes long to import; only a Hub call needs it
        from huggingface_hub import get_hf_file_metadata

        what = f"check {file.filename} on the Hub"
        try:
            with network_purpose(what):
                meta = get_hf_file_metadata(file.url, token=self._token(), timeout=self.timeout,
                                            library_name="cove", endpoint=self.endpoint)
            if meta.size is None or not meta.etag:
                raise ValueError("no size or ETag in the answer")
            return meta.etag, int(meta.size)
        except Exception as exc:  # every failure becomes a HubError with a sentence
            raise describe_failure(exc, what, repo_id=file.repo_id, filename=file.filename) from exc

    @contextmanager
    def open_range(self, file: RemoteFile, start: int, if_range: str = "", end: int | None = None,
                   purpose: str = "") -> Iterator[RangeResponse]:
        """GET ``file`` from byte ``start`` (to ``end``, exclusive, when given), with If-Range:
        ``if_range`` when given. A redirect to another host (the Hub's CDN) is followed by hand,
        without the token; there the file's own ETag (X-Linked-Etag) decides If-Range, since a CDN's
        ETags are not the Hub's. A server may ignore the range: check ``status``/``start``.
        ``purpose``: what the person asked for, for the network guard (default "download FILE")."""
        with self._stream(file, start, if_range, end, purpose or f"download {file.filename}") as response:
            yield response

    @contextmanager
    def _stream(self, file: RemoteFile, start: int, if_range: str, end: int | None,
                what: str) -> Iterator[RangeResponse]:
        with network_purpose(what):
            try:
                response, linked = self._open(file, start, if_range, end)
            except Exception as exc:  # every failure becomes a HubError with a sentence
                raise describe_failure(exc, what, repo_id=file.repo_id, filename=file.filename) from exc
            try:
                yield self._range_response(response, start, what, linked)
            finally:
                response.close()

    def _send(self, url: str, headers: dict[str, str]) -> Any:
        """Start a streamed GET (not following redirects); raise for an error status."""
        # lazy: huggingface_hub takes long to import; only a Hub call needs it
        from huggingface_hub.utils import get_session, hf_raise_for_status

        session = get_session()
        response = session.send(session.build_request("GET", url, headers=headers, timeout=self.timeout),
                                stream=True, follow_redirects=False)
        if response.status_code >= 400:
            try:
                response.read()
                hf_raise_for_status(response)
            finally:
                response.close()
        return response

    def _open(self, file: RemoteFile, start: int, if_range: str, end: int | None) -> tuple[Any, str]:
        """The response, and the file's own ETag from the Hub's redirect ("" when not redirected)."""
        headers = {**self._headers(), "Accept-Encoding": "identity"}
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else max(end, start + 1) - 1}"
            if if_range:
                headers["If-Range"] = f'"{_normal_etag(if_range)}"'
        url = file.url
        hub_etag = ""
        for _ in range(10):
            response = self._send(url, headers)
            if not response.is_redirect:
                return response, hub_etag
            linked = _normal_etag(response.headers.get("X-Linked-Etag"))
            hub_etag = hub_etag or linked
            target = urljoin(url, response.headers["Location"])
            response.close()
            if urljoin(target, "/") != urljoin(url, "/"):  # another host: no token, and If-Range by hand
                headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "if-range")}
                if if_range and linked and linked != _normal_etag(if_range):
                    headers.pop("Range", None)  # the file changed: from the beginning
            url = target
        raise ValueError("too many redirects")

    def _range_response(self, response: Any, start: int, what: str, hub_etag: str = "") -> RangeResponse:
        # Behind a redirect, the Hub's X-Linked-Etag names the file; a CDN's own ETag does not (it
        # differs between CDNs and requests), so it must never decide whether a partial is stale.
        etag = hub_etag or _normal_etag(response.headers.get("X-Linked-Etag") or response.headers.get("ETag"))
        if response.status_code == 206:
            span = _content_range(response.headers.get("Content-Range", ""))
            if span is None or span[0] != start:
                raise HubError("The Hugging Face Hub sent a different part of the file than Cove asked for.",
                               "bad_response", 206)
            return RangeResponse(206, etag, span[0], span[1], response, what)
        if response.status_code != 200:
            raise HubError(f"The Hugging Face Hub answered with an unexpected status ({response.status_code}).",
                           "bad_response", response.status_code)
        total = response.headers.get("Content-Length") or response.headers.get("X-Linked-Size")
        if total is None or not str(total).isdigit():
            raise HubError("The Hugging Face Hub did not say how large the file is.", "bad_response", 200)
        return RangeResponse(200, etag, 0, int(total), response, what)

    def read_prefix(self, file: RemoteFile, nbytes: int) -> bytes:
        """The first ``nbytes`` of ``file`` (fewer if it is shorter), e.g. for its GGUF header."""
        with self._stream(file, 0, "", nbytes, f"read the header of {file.filename}") as response:
            data = bytearray()
            for block in response.iter_chunks(1 << 20):
                data += block
                if len(data) >= nbytes:
                    break  # a server that ignored Range: stop reading, close the connection
        return bytes(data[:nbytes])
