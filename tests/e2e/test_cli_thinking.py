"""`cove chat` with a thinking model: SmolLM2's weights with QwQ's template (which opens `<think>` in
the prompt when thinking is on) and with gpt-oss's (effort levels). Real processes, the real model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths, app_paths
from tests.helpers.templated_model import with_template

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, starter_model: Path, probed_cache: Path) -> AppPaths:
    paths = app_paths(tmp_path_factory.mktemp("thinking") / "cove").ensure()
    shutil.copy(probed_cache, paths.probe_file)
    return paths


@pytest.fixture(scope="module")
def qwq(home: AppPaths, starter_model: Path) -> Path:
    return with_template(starter_model, "Qwen-QwQ-32B", home.data_dir / "smol-qwq.gguf")


def cove(paths: AppPaths, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=240)


def last_answer(paths: AppPaths):
    store = Store(paths.database)
    try:
        conversation = store.list_conversations()[0]
        return store.active_path(conversation.id)[-1]
    finally:
        store.close()


def test_think_with_a_budget_prints_reasoning_apart_and_stores_it(home: AppPaths, qwq: Path):
    run = cove(home, "chat", "--model", str(qwq), "--think", "--thinking-budget", "4", "--max-tokens", "24",
               "--temperature", "0", "--seed", "2", "--stats", "What is the capital of France?")
    assert run.returncode == 0, run.stderr
    answer = last_answer(home)
    assert answer.reasoning and answer.content.strip()
    assert answer.stats["reasoning_tokens"] == 4 and answer.stats["thinking_closed_by"] == "budget"
    assert answer.reasoning.strip() in run.stderr  # the reasoning on standard error...
    assert answer.reasoning.strip() not in run.stdout  # ...and not in the answer
    assert run.stdout.strip() == answer.content.strip()
    assert "(4 thinking," in run.stderr
    assert "\x1b[" not in run.stderr  # not a terminal: no colour codes


def test_no_think_asks_the_template_to_answer_directly(home: AppPaths, qwq: Path):
    run = cove(home, "chat", "--model", str(qwq), "--no-think", "--max-tokens", "12", "--temperature", "0",
               "What is the capital of France?")
    assert run.returncode == 0, run.stderr
    answer = last_answer(home)
    assert answer.reasoning == "" and answer.stats["reasoning_tokens"] == 0
    assert answer.content.strip() == run.stdout.strip()
    log = (home.log_dir / "cove.log").read_text()
    assert "thinking off, template variables {'enable_thinking': False}" in log


def test_hide_thinking_and_json(home: AppPaths, qwq: Path):
    shown = cove(home, "chat", "--model", str(qwq), "--think", "--thinking-budget", "3", "--max-tokens", "16",
                 "--temperature", "0", "--seed", "4", "Name a colour.")
    reasoning = last_answer(home).reasoning.strip()
    assert reasoning and reasoning in shown.stderr
    hidden = cove(home, "chat", "--model", str(qwq), "--think", "--thinking-budget", "3", "--max-tokens", "16",
                  "--temperature", "0", "--seed", "4", "--hide-thinking", "Name a colour.")
    assert hidden.returncode == 0 and reasoning not in hidden.stderr and hidden.stdout == shown.stdout
    as_json = cove(home, "chat", "--model", str(qwq), "--think", "--thinking-budget", "3", "--max-tokens", "16",
                   "--temperature", "0", "--seed", "4", "--json", "Name a colour.")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    stored = last_answer(home)
    assert document["reasoning"] == stored.reasoning.strip() == reasoning
    assert document["answer"] == stored.content.strip() == shown.stdout.strip()
    assert document["conversation"] == stored.conversation_id and document["stats"]["reasoning_tokens"] == 3
    assert reasoning not in as_json.stderr


def test_reasoning_effort_reaches_the_template(home: AppPaths, starter_model: Path):
    oss = with_template(starter_model, "openai-gpt-oss-120b", home.data_dir / "smol-oss.gguf")
    run = cove(home, "chat", "--model", str(oss), "--reasoning-effort", "high", "--max-tokens", "4", "Hi")
    assert run.returncode == 0, run.stderr
    log = (home.log_dir / "cove.log").read_text()
    assert "thinking format harmony (thinks · effort low/medium/high)" in log
    assert "template variables {'reasoning_effort': 'high'}" in log
