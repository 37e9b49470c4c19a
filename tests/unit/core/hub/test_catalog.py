"""The curated catalog shipped in resources/catalog.json."""

from __future__ import annotations

import json

import pytest

from desktop.core.hub.catalog import CatalogError, find_choice, load_catalog, parse_catalog
from desktop.core.hub.client import HubClient
from desktop.core.models.names import group_files, quantization
from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO, FakeHub


def test_the_shipped_catalog_is_valid_and_covers_the_families() -> None:
    entries = load_catalog()
    assert len(entries) >= 10
    assert {"Llama", "Mistral", "Qwen", "Gemma", "Phi", "SmolLM"} <= {e.family for e in entries}
    for entry in entries:
        assert entry.quant == quantization(entry.file) != "", entry.file
        assert entry.size < 6 * 10**9, f"{entry.title} is not laptop-sized"
        assert entry.description.endswith(".") and len(entry.description) < 120
    assert any(e.repo_id == SMOL_REPO and e.file == SMOL_FILE for e in entries), "the starter model is listed"


def test_a_catalog_entry_is_found_in_its_repository_listing(fake_hub: FakeHub) -> None:
    [entry] = [e for e in load_catalog() if e.repo_id == SMOL_REPO]
    choice = find_choice(entry, group_files(HubClient().repo(entry.repo_id).files))
    assert choice is not None and choice.size == entry.size and choice.parts[0].sha256


def good() -> dict:
    return {"repo_id": "o/r-GGUF", "file": "m-Q4_K_M.gguf", "size": 10, "license": "mit", "family": "Phi",
            "description": "A model.", "params": "1B"}


@pytest.mark.parametrize(("change", "message"), [
    ({"repo_id": "no-owner"}, "not a repository id"), ({"file": "../x.gguf"}, "file name"),
    ({"file": "m.safetensors"}, "not a GGUF"), ({"size": -1}, "positive"), ({"size": True}, "positive"),
    ({"license": ""}, "license"), ({"params": None}, "params"),
])
def test_malformed_entries_are_refused(change: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(json.dumps({"models": [{**good(), **change}]}))


def test_malformed_documents_are_refused() -> None:
    assert parse_catalog(json.dumps({"models": [good()]}))[0].title == "Phi 1B (Q4_K_M)"
    for text, message in [("{", "not valid JSON"), ("[]", "no list"), ('{"models": [1]}', "not an object"),
                          (json.dumps({"models": [{"repo_id": "o/r"}]}), "lacks"),
                          (json.dumps({"models": [good(), good()]}), "twice")]:
        with pytest.raises(CatalogError, match=message):
            parse_catalog(text)
