"""``cove models files`` and the download pane's service give the same fit verdict for the same file:
both call desktop.core.hub.remote_fit.judge, with the same settings, the same machine and the same
(fake) Hub serving the real SmolLM2 file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.__main__ import main
from desktop.cli import hub as cli_hub
from desktop.core.engine.loader import detect_hardware
from desktop.core.models.fit import RUNS_WELL, TIGHT, WILL_NOT_FIT
from desktop.core.system.hardware import HardwareInfo, MemoryInfo
from desktop.core.system.paths import app_paths
from desktop.core.system.secrets import SecretStore
from desktop.core.system.settings import Settings, load_settings, save_settings
from desktop.services.hub_service import HubService
from desktop.services.secrets_service import SecretsService
from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO, FakeHub

MIB = 1 << 20
REPO = "someone/SmolLM2-135M-Instruct-GGUF"
F16 = "SmolLM2-135M-Instruct-F16.gguf"


class NoSecrets(SecretStore):
    """No token anywhere (the system keyring is not asked)."""

    def get(self, name: str) -> str | None:
        return None


def cli_verdicts(capsys: pytest.CaptureFixture, base: Path, repo: str) -> dict[str, tuple[str, str]]:
    code = main(["--basedir", str(base), "models", "files", repo, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    models = json.loads(out)["models"]
    assert {m["n_ctx"] for m in models} == {3000}  # the saved setting, as the pane assumes
    return {m["name"]: (m["fit"], m["reason"]) for m in models}


def pane_verdicts(qtbot, settings: Settings, hardware: HardwareInfo, repo: str,
                  count: int) -> dict[str, tuple[str, str]]:
    secrets = SecretsService(NoSecrets())
    service = HubService(secrets, settings, hardware=lambda: hardware)
    seen = []
    service.verdict_ready.connect(seen.append)
    try:
        service.load_repo(repo)
        qtbot.waitUntil(lambda: len(seen) == count, timeout=30_000)
    finally:
        service.stop()
        secrets.stop()
    return {v.name: (v.label, v.reason) for v in seen}


def test_the_cli_and_the_pane_agree(qtbot, fake_hub: FakeHub, capsys: pytest.CaptureFixture, tmp_path: Path,
                                    starter_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.gguf"  # the same model padded to 4x its size, as a bigger quantization would be
    with starter_model.open("rb") as src, big.open("wb") as out:
        out.write(src.read())
        out.truncate(4 * starter_model.stat().st_size)
    fake_hub.add_repo(REPO, {"SmolLM2-135M-Instruct-Q4_1.gguf": starter_model, F16: big})
    base = tmp_path / "cove"
    paths = app_paths(base).ensure()
    saved = Settings()
    saved.generation.n_ctx, saved.acceleration.flash_attention = 3000, False  # not the defaults
    save_settings(paths.settings_file, saved)
    machine = detect_hardware()
    small = HardwareInfo(machine.cpu, MemoryInfo(1 << 30, 300 * MIB), machine.backend)
    labels = set()
    for hardware in (machine, small):
        monkeypatch.setattr(cli_hub, "detect_hardware", lambda hw=hardware: hw)
        for repo, count in ((SMOL_REPO, 1), (REPO, 2)):
            from_cli = cli_verdicts(capsys, base, repo)
            assert from_cli == pane_verdicts(qtbot, load_settings(paths.settings_file), hardware, repo, count)
            labels |= {label for label, _ in from_cli.values()}
    assert cli_verdicts(capsys, base, SMOL_REPO)[SMOL_FILE][0] == WILL_NOT_FIT  # on the small machine
    assert labels <= {RUNS_WELL, TIGHT, WILL_NOT_FIT} and len(labels) > 1, labels
