"""A runtime's KV cache on disk ("fast reopen"): saved when the person leaves a conversation,
restored when they come back, valid only for the same file, context size and cache layout."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as llama_lib

from desktop.core.engine.backends import LLAMA_CPP_VERSION


class KVStateMixin:
    """Saving and restoring :class:`~desktop.core.engine.runtime.Runtime`'s KV cache (it has
    ``path``, ``config``, ``n_ctx``, ``cached_tokens`` and ``_llm``)."""

    path: Path
    config: Any
    n_ctx: int
    cached_tokens: int
    _llm: Any

    def state_key(self) -> dict[str, Any]:
        """What a saved KV cache is only valid for: this file, context size and cache layout."""
        st = self.path.stat()
        return {"model": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "n_ctx": self.n_ctx, "n_batch": self.config.n_batch, "extra_bufts": self.config.use_extra_bufts,
                "llama_cpp": LLAMA_CPP_VERSION}

    def save_state(self, path: Path) -> int:
        """Write the KV cache and its tokens to ``path`` (atomically); returns the tokens saved."""
        n = self.cached_tokens
        if n == 0:
            return 0
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        tokens = (llama_lib.llama_token * n)(*self._llm.input_ids[:n].tolist())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        written = llama_lib.llama_state_seq_save_file(ctx, str(tmp).encode(), 0, tokens, n)
        if not written:
            tmp.unlink(missing_ok=True)
            return 0
        key_file = path.with_name(path.name + ".json")
        key_file.write_text(json.dumps({**self.state_key(), "tokens": n}))
        os.replace(tmp, path)
        return n

    def restore_state(self, path: Path) -> int:
        """Load a KV cache saved by :meth:`save_state` if it matches this model and settings;
        returns the tokens restored (0 when there was nothing valid to restore)."""
        key_file = path.with_name(path.name + ".json")
        try:
            saved = json.loads(key_file.read_text())
        except (OSError, ValueError):
            return 0
        if not path.is_file() or {k: saved.get(k) for k in self.state_key()} != self.state_key():
            return 0
        ctx = self._llm._ctx.ctx  # noqa: SLF001
        capacity = self.n_ctx
        tokens = (llama_lib.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        self._llm.reset()
        read = llama_lib.llama_state_seq_load_file(ctx, str(path).encode(), 0, tokens, capacity, ctypes.byref(count))
        if not read or count.value == 0:
            self._llm.reset()
            llama_lib.llama_memory_clear(llama_lib.llama_get_memory(ctx), True)
            return 0
        n = int(count.value)
        self._llm.input_ids[:n] = tokens[:n]
        self._llm.n_tokens = n
        self._llm._requires_eval = True  # noqa: SLF001 - logits of the last token were not saved
        return n
