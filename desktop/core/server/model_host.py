"""What ``cove serve`` serves: the library's models, loaded on the dispatcher's thread.

:class:`LibraryCatalog` names the served models (library models by file name, without
``.gguf``). :class:`ModelHost` is the headless executor: it owns the one chat model (loading
another when a request names it, as LM Studio's just-in-time loading does) and, for
``/v1/embeddings``, one embedding model, all on the one thread that runs jobs.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from desktop.core.engine.loader import ModelFileError
from desktop.core.library.entries import ModelEntry
from desktop.core.library.model_library import ModelLibrary
from desktop.core.models.gguf import read_gguf
from desktop.core.server.api_errors import ApiError, bad_request, server_error, unknown_model
from desktop.core.server.job_runner import embed_job, run_job
from desktop.core.server.jobs import Job
from desktop.core.server.model_ids import served_id
from desktop.core.system.paths import AppPaths

logger = logging.getLogger(__name__)

EMBEDDING_ARCHITECTURES = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "t5encoder",
                           "modern-bert", "neo-bert"}


class LibraryCatalog:
    """The library's models as the API lists them; read again at most every few seconds."""

    def __init__(self, paths: AppPaths, only: Path | None = None) -> None:
        self._paths, self._only = paths, only
        self._lock = threading.Lock()
        self._cache: tuple[float, list[ModelEntry]] | None = None
        self.kinds: dict[str, str] = {}  # id -> "chat" or "embedding"

    def entries(self) -> list[ModelEntry]:
        """The served models (the library's, or just ``only``)."""
        import time

        with self._lock:
            if self._cache is None or time.monotonic() - self._cache[0] > 5:
                entries = ModelLibrary(self._paths).entries()
                if self._only is not None:
                    entries = [e for e in entries if e.path == self._only] or [
                        ModelEntry(self._only, self._only.name, self._only.stat().st_size, "opened")]
                self._cache = (time.monotonic(), entries)
            return list(self._cache[1])

    def kind(self, entry: ModelEntry) -> str:
        """'embedding' for an embedding model's architecture, else 'chat'."""
        key = str(entry.path)
        if key not in self.kinds:
            try:
                arch = read_gguf(entry.path).architecture
            except Exception:  # noqa: BLE001 - an unreadable file is listed; loading it says why
                arch = ""
            self.kinds[key] = "embedding" if arch in EMBEDDING_ARCHITECTURES else "chat"
        return self.kinds[key]

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models`` entries."""
        return [{"id": served_id(e.path), "name": e.name, "kind": self.kind(e)} for e in self.entries()]

    def find(self, model: str) -> ModelEntry | None:
        """The entry served as ``model`` (its id, file name or display name)."""
        wanted = model.strip().lower()
        for entry in self.entries():
            if wanted in (served_id(entry.path).lower(), entry.path.name.lower(), entry.name.lower()):
                return entry
        return None

    def unknown(self, model: str) -> ApiError:
        """The 404 for ``model``."""
        return unknown_model(model, [m["id"] for m in self.models()])

    def check(self, model: str, embedding: bool = False) -> str:
        """The id ``model`` is served as, or the API error."""
        entry = self.find(model)
        if entry is None:
            raise self.unknown(model)
        kind = self.kind(entry)
        if embedding and kind != "embedding":
            raise bad_request(f"'{served_id(entry.path)}' is a chat model: it cannot make embeddings. Use an "
                              "embedding model (GET /v1/models lists each model's kind).", param="model")
        if not embedding and kind == "embedding":
            raise bad_request(f"'{served_id(entry.path)}' is an embedding model: use POST /v1/embeddings.",
                              param="model")
        return served_id(entry.path)


class ModelHost:
    """The headless executor: runs each job on the calling (dispatcher) thread with the model it names."""

    def __init__(self, paths: AppPaths, catalog: LibraryCatalog, n_ctx: int = 0, n_threads: int = 0) -> None:
        self._paths, self._catalog = paths, catalog
        self._n_ctx, self._n_threads = n_ctx, n_threads
        self._runtime: Any = None
        self._embedder: Any = None
        self.loaded: str = ""

    def load(self, model: str) -> Any:
        """The runtime for ``model``, loading it (and freeing the previous one) when needed."""
        entry = self._catalog.find(model)
        if entry is None:
            raise self._catalog.unknown(model)
        wanted = served_id(entry.path)
        if self._runtime is not None and self.loaded == wanted:
            return self._runtime
        from desktop.core.engine.loader import load_runtime  # lazy: llama_cpp

        self.close()
        logger.info("API: loading %s", entry.path)
        try:
            self._runtime = load_runtime(entry.path, self._paths, n_ctx=self._n_ctx, n_threads=self._n_threads)
        except ModelFileError as exc:
            raise server_error(f"The model '{wanted}' could not be loaded: {exc}") from exc
        self.loaded = wanted
        return self._runtime

    def __call__(self, job: Job) -> None:
        """Run ``job`` to its end."""
        try:
            if isinstance(job.request, tuple) and job.request[0] == "load":  # the warm-up at start
                self.load(job.request[1])
                job.finish({"model": self.loaded})
                return
            if isinstance(job.request, tuple):
                self._embed(job)
                return
            runtime = self.load(job.request.model)
        except ApiError as error:
            job.fail(error)
            return
        run_job(runtime, job, self.loaded)

    def _embed(self, job: Job) -> None:
        _kind, model, _texts = job.request
        entry = self._catalog.find(model)
        if entry is None:
            raise self._catalog.unknown(model)
        if self._embedder is None or self._embedder.path != entry.path:
            from desktop.core.engine.embedder import Embedder  # lazy: llama_cpp

            if self._embedder is not None:
                self._embedder.close()
            self._embedder = Embedder(entry.path, n_threads=self._n_threads)
        embed_job(self._embedder, job, served_id(entry.path))

    def close(self) -> None:
        """Free the loaded models (on the thread that used them)."""
        runtime, self._runtime, self.loaded = self._runtime, None, ""
        if runtime is not None:
            runtime.close()


class LoadedModelCatalog:
    """What the window's server serves: the one model the window has loaded (set by the window,
    read by the API's threads), so a request never swaps the person's model under them."""

    def __init__(self) -> None:
        self.loaded: Path | None = None

    def models(self) -> list[dict[str, Any]]:
        """The loaded model, or nothing."""
        loaded = self.loaded
        return [{"id": served_id(loaded), "name": loaded.name, "kind": "chat"}] if loaded is not None else []

    def unknown(self, model: str) -> ApiError:
        """The 404, saying which model the window serves."""
        loaded = self.loaded
        served = f"the window serves the model it has loaded, '{served_id(loaded)}'" if loaded else \
            "the window has no model loaded"
        return ApiError(404, f"The model '{model}' is not served here: {served}. Pick another in Cove's window, "
                        "or run cove serve to serve the whole library.", param="model", code="model_not_found")

    def check(self, model: str, embedding: bool = False) -> str:
        """The loaded model's id when ``model`` names it, else the 404."""
        loaded = self.loaded
        if loaded is None or model.strip().lower() not in (served_id(loaded).lower(), loaded.name.lower()):
            raise self.unknown(model)
        if embedding:
            raise bad_request("The window's server answers chat and text completions; for embeddings use "
                              "cove serve.", param="model")
        return served_id(loaded)
