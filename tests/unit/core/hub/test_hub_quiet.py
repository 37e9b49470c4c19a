"""No telemetry, ever: a whole search-list-download session against the fake Hub asks only for what
the person asked for (no usage reports, no agent registry), even with huggingface_hub imported first
and the telemetry switch unset in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.core.downloads.download import download_model
from desktop.core.hub.client import HubClient
from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO


def test_a_session_sends_only_the_requests_the_person_asked_for(fake_hub, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import _detect_agent

    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)  # as if imported before Cove
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home" / ".agent_harnesses.json"))
    monkeypatch.setattr(_detect_agent, "_registry", None)  # no registry cached in this process
    client = HubClient()
    assert [r.repo_id for r in client.search("smollm2")] == [SMOL_REPO]
    file = next(f for f in client.repo(SMOL_REPO).files if f.filename == SMOL_FILE)
    download_model(client, [file], tmp_path / "models")
    fake_hub.settle()
    paths = {r.path.split("?")[0] for r in fake_hub.requests}
    unexpected = [p for p in paths if not (p == "/api/models" or p.startswith(f"/api/models/{SMOL_REPO}")
                                           or p.startswith(f"/{SMOL_REPO}/resolve/"))]
    assert unexpected == [], unexpected
    assert _detect_agent._registry is None, "huggingface_hub looked up its agent registry (a Hub request)"
    assert not (tmp_path / "hf-home").exists(), "huggingface_hub wrote to its home folder"
