"""An embedding model in-process (llama.cpp with ``embedding=True``): one vector per text,
pooled as the model's GGUF says and normalised to unit length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import llama_cpp

from desktop.core.engine.stats import GenerationError
from desktop.core.system.settings import GenerationSettings


class Embedder:
    """One loaded embedding model. Create, use and close it on the same thread."""

    def __init__(self, path: str | Path, n_ctx: int = 0, n_threads: int = 0) -> None:
        self.path = Path(path)
        threads = n_threads or GenerationSettings().effective_threads()
        try:
            self._llm = llama_cpp.Llama(model_path=str(self.path), embedding=True, n_ctx=n_ctx or 512,
                                        n_threads=threads, n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise GenerationError(f"llama.cpp could not load {self.path.name} for embeddings: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """Unit-length vectors for ``texts`` and the tokens they took."""
        vectors, tokens = [], 0
        for text in texts:
            ids = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            if len(ids) > self._llm.n_ctx():
                raise GenerationError(f"A text of {len(ids)} tokens is longer than the embedding model's "
                                      f"{self._llm.n_ctx()}-token window.")
            tokens += len(ids)
            vector = self._llm.embed(text)
            if vector and isinstance(vector[0], list):  # a model without pooling: one vector per token
                vector = [sum(col) / len(vector) for col in zip(*vector)]
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors, tokens

    def close(self) -> None:
        """Free the model."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()
