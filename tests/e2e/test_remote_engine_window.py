"""A remote engine in the real window, offscreen, against real third-party engines on 127.0.0.1:
llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``) serving SmolLM2
in a child process, and Cove's own ``cove serve`` from another process. The person adds the
engine in Settings → Engines, picks its model, chats, stops and regenerates; the conversation is in
the local store; the engine killed mid-answer leaves the partial answer and a sentence saying
what happened; and Cove connects only to the engine's host and port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop.core.conversations.records import COMPLETE, FAILED, STOPPED
from desktop.core.conversations.store import Store
from desktop.core.remote.model_keys import parse_remote_key
from desktop.core.system.paths import AppPaths, app_paths
from tests.gui.conftest import ask
from tests.helpers.cove_server import cove_serve
from tests.helpers.engine_servers import llama_cpp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LONG = "List 100 animals, one per line, numbered."


def add_engine(qtbot, app, name: str, url: str) -> str:
    """Add the engine through Settings → Engines; returns the key of its first model in the picker."""
    app.window.open_settings_dialog("Engines")
    panel = app.window.settings_dialog.extra_tabs["Engines"]
    qtbot.keyClicks(panel.name, name)
    qtbot.keyClicks(panel.url, url)
    with qtbot.waitSignal(app.engines.added, timeout=30_000):
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 1, timeout=30_000)
    assert panel.tree.topLevelItem(0).text(0) == name and "Added" in panel.add_state.text()
    app.window.settings_dialog.close()
    picker = app.window.model_picker
    qtbot.waitUntil(lambda: any((parse_remote_key(str(picker.itemData(i))) or ("",))[0] == name
                                for i in range(picker.count())), timeout=30_000)
    index = next(i for i in range(picker.count()) if (parse_remote_key(str(picker.itemData(i))) or ("",))[0] == name)
    assert picker.itemText(index).endswith(f" · {name}")  # marked with its engine
    return str(picker.itemData(index))


def pick(qtbot, app, key: str) -> None:
    picker = app.window.model_picker
    index = picker.findData(key)
    with qtbot.waitSignal(app.controller.model_state, timeout=30_000,
                          check_params_cb=lambda state, _text: state == "ready"):
        picker.setCurrentIndex(index)
        picker.activated.emit(index)
    assert "on the engine" in app.window.model_status.text()


def stored(paths: AppPaths, conversation_id: int) -> list:
    store = Store(paths.database)
    try:
        return store.active_path(conversation_id)
    finally:
        store.close()


def start_long_answer(qtbot, app, pieces: int = 5) -> None:
    composer = app.window.composer
    qtbot.keyClicks(composer, LONG)
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: app.controller.streaming_message_id and len(app.controller.answer_text.split()) >= pieces,
                    timeout=60_000)


@pytest.fixture
def home(tmp_path: Path, probed_cache: Path) -> AppPaths:
    import shutil

    paths = app_paths(tmp_path / "cove").ensure()
    shutil.copy(probed_cache, paths.probe_file)
    return paths


def test_chat_stop_regenerate_and_a_killed_engine_with_llama_cpp_server(qtbot, start_cove, home: AppPaths,
                                                                        starter_model: Path):
    with llama_cpp_server(starter_model) as engine:
        app = start_cove(home)
        app.controller.settings.generation.max_tokens = 300
        app.controller.settings.generation.seed = 3
        key = add_engine(qtbot, app, "team", engine.url)
        pick(qtbot, app, key)
        # chat
        message_id, status, stats = ask(qtbot, app, "Say hello in one short sentence.")
        assert status == COMPLETE and app.controller.answer_text.strip()
        conversation = app.controller.conversation_id
        qtbot.waitUntil(lambda: stored(home, conversation)[-1].status == COMPLETE, timeout=10_000)
        messages = stored(home, conversation)
        assert [m.role for m in messages] == ["user", "assistant"] and messages[1].content.strip()
        assert stats["completion_tokens"] > 0 and stats["decode_tokens_per_s"] > 0
        # stop: the stream closes at once, what came stays
        start_long_answer(qtbot, app)
        with qtbot.waitSignal(app.controller.answer_finished, timeout=5_000) as stopped:
            asked = time.perf_counter()
            app.controller.stop()
        stop_s = time.perf_counter() - asked
        assert stopped.args[1] == STOPPED and stop_s < 1.0, stop_s
        # regenerate: a new version of the last answer, from the engine
        with qtbot.waitSignal(app.controller.answer_finished, timeout=120_000) as again:
            app.controller.regenerate()
        assert again.args[1] in (COMPLETE, STOPPED) and again.args[0] != stopped.args[0]
        assert app.controller.answer_text.strip()
        # the engine dies mid-answer: the partial answer is kept, the message says what happened
        start_long_answer(qtbot, app)
        with qtbot.waitSignal(app.controller.answer_finished, timeout=30_000) as cut:
            engine.kill()
        assert cut.args[1] == FAILED
        assert "The engine 'team'" in cut.args[2]["error"]
        assert "The engine 'team'" in app.window.banner.text()
        conversation = app.controller.conversation_id
        partial = stored(home, conversation)[-1]
        assert partial.status == FAILED and len(partial.content.split()) >= 5
        # only the engine's host and port were reached
        host, port = engine.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        reached = {(e.host, e.port) for e in app.network.events() if e.allowed and e.kind == "connect"}
        assert reached == {(host, int(port))}, app.network.events()


def test_cove_serve_from_another_process_is_an_engine_like_any_other(qtbot, start_cove, home: AppPaths,
                                                                    tmp_path: Path, probed_cache: Path):
    import shutil

    other = app_paths(tmp_path / "other").ensure()
    shutil.copy(probed_cache, other.probe_file)
    with cove_serve(other) as served:
        app = start_cove(home)
        app.controller.settings.generation.max_tokens = 24
        key = add_engine(qtbot, app, "laptop2", served.url)
        assert key == "engine:laptop2/SmolLM2-135M-Instruct.Q4_1"
        pick(qtbot, app, key)
        _message_id, status, stats = ask(qtbot, app, "Say hello.")
        assert status == COMPLETE and app.controller.answer_text.strip()
        assert stats["completion_tokens"] > 0 and stats["prompt_tokens"] > 0  # usage read from the stream
