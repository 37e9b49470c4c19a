"""The log after a real chat turn through `cove chat`: what happened is there, what was said is
not, unless the person turned on the debug switch (Settings → Privacy)."""

from __future__ import annotations

import pytest

from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths
from desktop.core.system.settings import load_settings, save_settings
from tests.e2e.test_cli import cove

pytestmark = pytest.mark.e2e

PROMPT = "Write one sentence about a lighthouse keeper named Zebulon Quartermaine."


def last_answer(paths: AppPaths) -> str:
    store = Store(paths.database)
    try:
        conversation = store.list_conversations()[0]
        return store.active_path(conversation.id)[-1].content
    finally:
        store.close()


def log_text(paths: AppPaths) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(paths.log_dir.glob("cove.log*")))


def chat(paths: AppPaths) -> str:
    result = cove(paths, "chat", "--max-tokens", "32", "--seed", "3", "--temperature", "0.2", PROMPT)
    assert result.returncode == 0, result.stderr
    answer = last_answer(paths)
    assert len(answer.strip()) >= 20, answer  # long enough that finding it in the log means something
    return answer


def test_the_log_has_no_prompt_or_answer_text(paths: AppPaths) -> None:
    answer = chat(paths)
    text = log_text(paths)
    assert "log opened" in text and f"answer complete: <{len(answer)} chars>" in text
    assert f"the last (user) <{len(PROMPT)} chars>" in text
    for secret in (PROMPT, "Zebulon", "Quartermaine", answer.strip(), answer.strip()[:20]):
        assert secret not in text, secret


def test_with_the_debug_switch_on_the_log_has_the_text(paths: AppPaths) -> None:
    settings = load_settings(paths.settings_file)
    settings.debug_log = True
    save_settings(paths.settings_file, settings)
    answer = chat(paths)
    text = log_text(paths)
    assert PROMPT in text
    assert f"answer complete: {answer!r}" in text
