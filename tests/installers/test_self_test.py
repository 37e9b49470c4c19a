"""``cove --self-test`` and ``cove --probe-child`` from the source tree (the bundle runs the same
code frozen: tests/installers/test_linux_bundle.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli import self_test
from desktop.core.engine.probe import MARK
from tests.conftest import REPO

SELF_TEST_LINE = re.compile(r'^cove self-test ok: SmolLM2-135M-Instruct\.Q4_1, (\d+) tokens in [\d.]+ s '
                            r'\([\d.]+ tok/s\), answer: "(.+)"$')


def isolated_env(home: Path) -> dict[str, str]:
    """The environment of a user whose home is ``home``: no data-folder overrides, no display."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XDG_") and k not in ("COVE_BASEDIR", "DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return env


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.e2e
def test_self_test_answers_and_writes_nothing_to_the_users_data(tmp_path: Path, starter_model: Path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("import sys\n"
            "from desktop.__main__ import main\n"
            "rc = main(['--self-test'])\n"
            "assert not [m for m in sys.modules if m.startswith('PySide6')], 'the self-test imported Qt'\n"
            "sys.exit(rc)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=isolated_env(home),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.stdout.strip().splitlines()[-1]
    match = SELF_TEST_LINE.match(line)
    assert match and int(match.group(1)) > 0 and match.group(2).strip(), line
    assert files_under(home) == []


def test_self_test_fails_with_one_line_when_the_model_is_missing(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(self_test, "starter_model_path", lambda: None)
    assert self_test.run_self_test() == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("cove self-test failed: the starter model")


@pytest.mark.e2e
def test_probe_child_flag_runs_the_probe(starter_model: Path):
    result = subprocess.run([sys.executable, "-m", "desktop", "--probe-child", str(starter_model),
                             "--extra-bufts", "0", "--threads", "2"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    assert json.loads(lines[0][len(MARK):])["ok"] is True
