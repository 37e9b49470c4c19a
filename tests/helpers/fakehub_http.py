"""The fake Hub's HTTP side: the records it serves (repositories, files, misbehaviour switches, the
request log) and the request handler. The public face is :class:`tests.helpers.fakehub.FakeHub`."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    from tests.helpers.fakehub import FakeHub

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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        super().finish()

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
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
        self._send_file(repo.files[filename], query.get("c", [repo.sha])[0], rule, cdn=True)

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

    def _send_file(self, file: FakeFile, commit: str, rule: Misbehaviour, cdn: bool = False) -> None:
        headers = {"ETag": file.etag, "X-Linked-Etag": file.etag, "X-Linked-Size": str(file.size),
                   "X-Repo-Commit": commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if cdn:  # as a real CDN: its own ETag (not the file's sha256), no X-Linked-* headers
            headers = {"ETag": f'"cdn-{file.sha256[:16]}-{time.monotonic_ns() % 997}"', "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
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
