"""Tools end to end in the real window: SmolLM2's weights with Qwen 2.5's chat template (Hermes
``<tool_call>`` calls), the real test MCP server (the SDK's server API) as a stdio subprocess, and a
required tool, so the 135M model's call is constrained by a grammar and always parses.

The first start of the server shows its exact command and starts nothing until allowed; the call's
approval dialog shows its name and arguments; *Allow once* runs it and its result block appears
before the model's final answer; *Deny* sends the denial back instead; after a restart every
message (the call, its result, the answers) is still in the conversation, in order.
"""

from __future__ import annotations

import json
import shlex
import sys
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from desktop.core.conversations.store import COMPLETE, Store
from desktop.core.tools.mcp_config import command_line, load_config
from desktop.core.tools.specs import DENIED, OK
from desktop.ui.chat.tool_approval import ServerStartDialog, ToolApprovalDialog
from tests.gui.conftest import ANSWER_TIMEOUT_MS, LOAD_TIMEOUT_MS
from tests.helpers.mcp_servers import SCRIPT
from tests.helpers.templated_model import with_template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def open_dialog(qtbot, kind: type):
    found: list = []

    def shown() -> bool:
        found[:] = [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=ANSWER_TIMEOUT_MS)
    return found[0]


def send(qtbot, app, text: str) -> None:
    composer = app.window.composer
    composer.setFocus()
    qtbot.keyClicks(composer, text)
    qtbot.keyClick(composer, Qt.Key.Key_Return)


def wait_idle(qtbot, app) -> None:
    qtbot.waitUntil(lambda: not app.controller.busy, timeout=ANSWER_TIMEOUT_MS * 2)


def test_a_required_tool_is_approved_run_shown_answered_and_kept(qtbot, paths, start_cove, starter_model):
    model = with_template(starter_model, "Qwen-Qwen2.5-7B-Instruct", paths.data_dir / "smol-qwen25.gguf")
    config = {"mcpServers": {"weather": {"command": sys.executable, "args": [str(SCRIPT), "stdio"]}}}
    paths.mcp_config.write_text(json.dumps(config))
    expected_command = command_line(load_config(paths.mcp_config)[0][0])
    assert expected_command == shlex.join([sys.executable, str(SCRIPT), "stdio"])

    app = start_cove(wait_model=False)
    with qtbot.waitSignal(app.controller.model_state, timeout=LOAD_TIMEOUT_MS * 3,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as loaded:
        app.controller.select_model(str(model))
    assert loaded.args[0] == "ready", loaded.args
    generation = app.controller.settings.generation
    generation.temperature, generation.seed, generation.max_tokens = 0.0, 5, 60
    generation.tools, generation.require_tool = ["weather"], "get_weather"
    rounds: list[str] = []
    app.controller.answer_started.connect(lambda message: rounds.append("round"))

    # The first start asks with the exact command line; nothing runs before the answer.
    send(qtbot, app, "What is the weather in Paris?")
    start = open_dialog(qtbot, ServerStartDialog)
    assert start.command.toPlainText().strip() == expected_command
    assert app.tools.status("weather") == "stopped"  # asked first: not started
    qtbot.mouseClick(start.start, Qt.MouseButton.LeftButton)

    approval = open_dialog(qtbot, ToolApprovalDialog)
    shown = approval.arguments.toPlainText()
    labels = " ".join(label.text() for label in approval.findChildren(QLabel))
    assert "get_weather" in labels and "weather" in labels, labels  # the tool and its server
    request = json.loads(shown)
    assert isinstance(request["city"], str) and request["city"]
    clicked_at = time.perf_counter()
    with qtbot.waitSignal(app.controller.tool_turn.result_added, timeout=ANSWER_TIMEOUT_MS) as added:
        qtbot.mouseClick(approval.allow_once, Qt.MouseButton.LeftButton)
    result_message = added.args[0]
    shown_after = time.perf_counter() - clicked_at
    assert result_message.role == "tool" and result_message.tool["status"] == OK
    assert result_message.content == f"Sunny, 21 °C in {request['city']}"
    block = app.window.chat_view.widget_for(result_message.id)
    assert block is not None
    qtbot.waitUntil(block.isVisible, timeout=5000)  # the result block is in the answer, shown
    wait_idle(qtbot, app)
    assert len(rounds) == 2  # the call, then the answer after its result
    cid = app.controller.conversation_id
    print(f"\nrounds per answer: {len(rounds)}; allow -> result shown {shown_after * 1000:.0f} ms")

    # Deny: the denial goes back to the model, which answers without the tool.
    send(qtbot, app, "And in Rome?")
    approval = open_dialog(qtbot, ToolApprovalDialog)
    with qtbot.waitSignal(app.controller.tool_turn.result_added, timeout=ANSWER_TIMEOUT_MS) as denied:
        qtbot.mouseClick(approval.deny, Qt.MouseButton.LeftButton)
    assert denied.args[0].tool["status"] == DENIED and "denied" in denied.args[0].content
    wait_idle(qtbot, app)

    app.store.wait_idle()
    app.window.close()
    app.shutdown()
    store = Store(paths.database)
    try:
        messages = store.active_path(cid)
    finally:
        store.close()
    roles = [m.role for m in messages]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant"], roles
    assert messages[1].tool_calls[0]["name"] == "get_weather" and messages[1].tool_calls[0]["arguments"] == request
    assert messages[2].tool["status"] == OK and messages[6].tool["status"] == DENIED
    assert all(m.status == COMPLETE for m in messages)
    assert messages[3].content.strip() and messages[7].content.strip()  # the final answers followed

    # After a restart the window shows the same conversation, calls and results included.
    again = start_cove(wait_model=False)
    qtbot.waitUntil(lambda: again.controller.conversation_id == cid, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: again.window.chat_view.widget_for(messages[2].id) is not None, timeout=LOAD_TIMEOUT_MS)
