"""The `cove` command as a person runs it: real processes, the real model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import __version__
from desktop.core.conversations.store import COMPLETE, Store

pytestmark = pytest.mark.e2e


def cove(paths, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, input=input)


def test_chat_streams_an_answer_and_stores_the_exchange(paths):
    result = cove(paths, "chat", "--max-tokens", "40", "--seed", "5", "--temperature", "0.2", "--stats",
                  "What is two plus two?")
    assert result.returncode == 0, result.stderr
    answer = result.stdout.strip()
    assert answer
    assert "tokens/s" in result.stderr and "conversation 1" in result.stderr
    store = Store(paths.database)
    [conversation] = store.list_conversations()
    messages = store.active_path(conversation.id)
    assert [(m.role, m.status) for m in messages] == [("user", COMPLETE), ("assistant", COMPLETE)]
    assert messages[0].content == "What is two plus two?"
    assert messages[1].content.strip() == answer
    assert messages[1].stats["completion_tokens"] <= 40
    store.close()


def test_chat_options_reach_the_runtime(paths):
    system = cove(paths, "chat", "--max-tokens", "8", "--seed", "1", "--temperature", "0", "--ctx", "512",
                  "--threads", "1", "--system", "Answer in French.", "--stats", "Hello")
    assert system.returncode == 0, system.stderr
    assert "context" in system.stderr and "/512" in system.stderr
    same = cove(paths, "chat", "--max-tokens", "8", "--seed", "1", "--temperature", "0", "--ctx", "512",
                "--threads", "1", "--system", "Answer in French.", "Hello")
    assert same.stdout == system.stdout  # same seed and settings, same answer


def test_chat_reads_the_prompt_from_stdin_and_continues_a_conversation(paths):
    first = cove(paths, "chat", "--max-tokens", "8", "-", input="My name is Ada.")
    assert first.returncode == 0, first.stderr
    second = cove(paths, "chat", "--max-tokens", "8", "--conversation", "1", "What is my name?")
    assert second.returncode == 0, second.stderr
    store = Store(paths.database)
    assert [m.role for m in store.active_path(1)] == ["user", "assistant", "user", "assistant"]
    store.close()


def test_models_lists_the_starter_model(paths, starter_model):
    result = cove(paths, "models")
    assert result.returncode == 0
    assert "SmolLM2-135M-Instruct" in result.stdout and str(starter_model) in result.stdout


def test_version():
    result = subprocess.run([sys.executable, "-m", "desktop", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"cove {__version__}"
    script = shutil.which("cove", path=str(Path(sys.executable).parent))
    assert script, "the `cove` command is not installed next to this Python"
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.strip() == f"cove {__version__}"


def test_bad_input_gives_one_line_messages_and_keeps_history(paths, tmp_path, starter_model):
    ok = cove(paths, "chat", "--max-tokens", "4", "Hi")
    assert ok.returncode == 0
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(starter_model.read_bytes()[:3_000_000])
    cases = [
        (["chat", ""], "prompt is empty", 2),
        (["chat", "--model", str(text), "Hi"], "not a GGUF model file", 1),
        (["chat", "--model", str(truncated), "Hi"], "truncated", 1),
        (["chat", "--model", str(tmp_path), "Hi"], "is a folder", 1),
        (["chat", "--model", str(tmp_path / "nope.gguf"), "Hi"], "does not exist", 1),
        (["chat", "--conversation", "99", "Hi"], "no conversation 99", 1),
    ]
    for args, expected, code in cases:
        result = cove(paths, *args)
        assert result.returncode == code, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    store = Store(paths.database)
    [conversation] = store.list_conversations()
    assert [m.role for m in store.active_path(conversation.id)] == ["user", "assistant"]
    assert store.integrity_check() == "ok"
    store.close()
