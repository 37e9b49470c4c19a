"""`cove engines` and `cove chat --engine` in real processes, against llama-cpp-python's own
OpenAI-compatible server serving SmolLM2; the conversation lands in the local store."""

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
from tests.helpers.engine_servers import llama_cpp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def cove(paths: AppPaths, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COVE_BASEDIR=str(paths.data_dir.parent))
    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_add_list_chat_and_remove_an_engine(tmp_path: Path, starter_model: Path, probed_cache: Path):
    home = app_paths(tmp_path / "cove").ensure()
    shutil.copy(probed_cache, home.probe_file)
    with llama_cpp_server(starter_model) as engine:
        added = cove(home, "engines", "add", "team", engine.url.removesuffix("/v1"))
        assert added.returncode == 0, added.stderr
        assert "Added 'team'" in added.stdout and "smollm2" in added.stdout
        listed = json.loads(cove(home, "engines", "--json").stdout)
        assert listed == [{"name": "team", "url": engine.url, "error": "", "models": ["smollm2"]}]
        chat = cove(home, "chat", "--engine", "team", "--model", "smollm2", "--max-tokens", "16", "--json",
                    "Say hello.")
        assert chat.returncode == 0, chat.stderr
        answer = json.loads(chat.stdout)
        assert answer["answer"].strip()
        store = Store(home.database)
        try:
            [conversation] = store.list_conversations()
            messages = store.active_path(conversation.id)
        finally:
            store.close()
        assert conversation.model == "engine:team/smollm2"
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].content == answer["answer"]
        duplicate = cove(home, "engines", "add", "team", engine.url)
        assert duplicate.returncode == 1 and "already an engine called 'team'" in duplicate.stderr
    down = cove(home, "engines")
    assert "team" in down.stdout and "refused the connection" in down.stdout
    unsent = cove(home, "chat", "--engine", "team", "--model", "smollm2", "Hi")
    assert unsent.returncode == 1 and "cove: The engine 'team' refused the connection" in unsent.stderr
    removed = cove(home, "engines", "rm", "team")
    assert removed.returncode == 0 and json.loads(cove(home, "engines", "--json").stdout) == []
