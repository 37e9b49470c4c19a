"""Building a ``Llama`` through :func:`desktop.core.engine.llama_params.model_params`."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format
import llama_cpp.llama_cpp as llama_lib
import pytest

from desktop.core.engine.llama_params import model_params


def test_the_fields_apply_inside_the_block_only() -> None:
    factory, formatter = llama_lib.llama_model_default_params, llama_chat_format.Jinja2ChatFormatter
    default = bool(factory().use_extra_bufts)
    with model_params(use_extra_bufts=not default):
        assert bool(llama_lib.llama_model_default_params().use_extra_bufts) is (not default)
        assert llama_chat_format.Jinja2ChatFormatter is not formatter
    assert llama_lib.llama_model_default_params is factory
    assert llama_chat_format.Jinja2ChatFormatter is formatter
    assert bool(factory().use_extra_bufts) is default


def test_the_factory_is_restored_when_construction_fails(tmp_path: Path) -> None:
    factory = llama_lib.llama_model_default_params
    with pytest.raises(ValueError), model_params(use_extra_bufts=False):
        llama_cpp.Llama(model_path=str(tmp_path / "missing.gguf"), verbose=False)
    assert llama_lib.llama_model_default_params is factory


def test_a_model_built_here_never_compiles_its_template_with_plain_jinja(starter_model: Path) -> None:
    with model_params(use_extra_bufts=False):
        llm = llama_cpp.Llama(model_path=str(starter_model), n_ctx=256, n_threads=2, verbose=False)
    try:
        assert llm.metadata.get("tokenizer.chat_template")  # the model has one; llama-cpp-python left it alone
        with pytest.raises(NotImplementedError, match="Cove renders chat templates itself"):
            llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    finally:
        llm.close()
