"""Building a ``Llama`` with the model params llama-cpp-python's constructor does not expose.

:func:`model_params` wraps one construction: llama.cpp's default-params factory returns the fields
Cove chose (``use_extra_bufts`` in particular), and the constructor's chat-template compile is
stubbed out (:class:`_UnusedChatFormatter`). Used by :class:`desktop.core.engine.runtime.Runtime`
and by ``cove bench``'s raw llama-cpp-python baseline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp.llama_chat_format as llama_chat_format
import llama_cpp.llama_cpp as llama_lib

# Imported for its side effect: it registers the loadable backends, without which no Llama loads.
from desktop.core.engine import backends  # noqa: F401

__all__ = ["model_params"]

_PARAMS_LOCK = threading.Lock()


class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's ``Jinja2ChatFormatter`` while a ``Llama`` is built.

    The constructor compiles every chat template in the GGUF's metadata with a plain Jinja
    sandbox. Cove never uses those handlers (it renders with :mod:`desktop.core.engine.chat_template`),
    and that compile is unsafe: Jinja evaluates constant expressions while compiling, outside any
    time or size limit (``{{ 'a' * 10**9 }}`` takes about 20 s and 4 GB there), and a template
    that is not valid Jinja would make the model fail to load instead of falling back to ChatML.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Any:
        """A handler that refuses: Cove never lets llama-cpp-python format a chat."""
        def unused(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("Cove renders chat templates itself")
        return unused


@contextmanager
def model_params(*, chat_formatter: bool = False, **fields: Any) -> Iterator[None]:
    """Make ``Llama()`` start from llama.cpp's default model params with ``fields`` changed.

    llama-cpp-python's constructor does not expose every field of ``llama_model_params``
    (``use_extra_bufts`` in particular), so the default-params factory it calls is wrapped for
    the duration of one construction. Its chat formatter is stubbed out for that time as well
    (see :class:`_UnusedChatFormatter`), unless ``chat_formatter``: benchmarks of raw
    llama-cpp-python's ``create_chat_completion`` keep it, for the trusted starter model only.
    """
    original = llama_lib.llama_model_default_params

    def patched() -> Any:
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    with _PARAMS_LOCK:
        llama_lib.llama_model_default_params = patched
        formatter = llama_chat_format.Jinja2ChatFormatter
        if not chat_formatter:
            llama_chat_format.Jinja2ChatFormatter = _UnusedChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_lib.llama_model_default_params = original
            llama_chat_format.Jinja2ChatFormatter = formatter  # type: ignore[misc]
