"""Tools in the window: the tool block in an answer, the two approval dialogs, the Tools control,
Settings → Tools and the Privacy tab's MCP hosts; real widgets, a real ToolService, and (once)
the real app with the real test MCP server."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from desktop.core.conversations.records import COMPLETE, STREAMING, Message
from desktop.core.system.network_guard import NetworkLog
from desktop.core.system.paths import AppPaths, app_paths
from desktop.core.system.settings import Settings
from desktop.core.text.markdown import LIGHT, MarkdownRenderer
from desktop.services.secrets_service import SecretsService
from desktop.services.tool_service import ToolService
from desktop.ui.chat.chat_view import ChatView
from desktop.ui.chat.tool_approval import ServerStartDialog, ToolApprovalDialog
from desktop.ui.chat.tools_control import ToolsControl
from desktop.ui.settings.privacy_panel import PrivacyPanel
from desktop.ui.settings.tools_panel import ToolsPanel
from tests.helpers.mcp_servers import SCRIPT

WEATHER_ARGS = {"city": "Paris", "units": {"temperature": "celsius"}}


def message(mid: int, role: str, content: str = "", **extra) -> Message:
    return Message(mid, 1, mid - 1 or None, role, content, extra.pop("status", COMPLETE), time.time(), **extra)


def tool_message(mid: int, status: str = "ok", content: str = "Sunny, 21 °C in Paris", seconds: float = 0.1234,
                 name: str = "get_weather") -> Message:
    return message(mid, "tool", content, tool={"call_id": f"c{mid}", "name": name, "status": status,
                                               "duration_s": seconds, "server": "weather",
                                               "arguments": WEATHER_ARGS})


def stdio_config(name: str = "weather") -> dict:
    return {"mcpServers": {name: {"command": sys.executable, "args": [str(SCRIPT), "stdio"]}}}


@pytest.fixture
def tool_paths(tmp_path: Path) -> AppPaths:
    return app_paths(tmp_path / "cove").ensure()


@pytest.fixture
def tools(qtbot, tool_paths: AppPaths) -> Iterator[ToolService]:
    """A real ToolService on a private config folder (stopped after the test)."""
    service = ToolService(tool_paths, Settings())
    yield service
    service.shutdown()


def load(qtbot, tools: ToolService, config: dict | None, paths: AppPaths) -> None:
    if config is not None:
        paths.mcp_config.write_text(json.dumps(config), encoding="utf-8")
    with qtbot.waitSignal(tools.servers_changed, timeout=5000):
        tools.reload()


# -- the tool block ------------------------------------------------------------------------------

def test_a_stored_tool_call_reads_as_one_line_in_the_answer_and_unfolds(qtbot) -> None:
    view = ChatView(MarkdownRenderer(LIGHT))
    qtbot.addWidget(view)
    view.resize(700, 600)
    calls = [{"id": "c3", "name": "get_weather", "arguments": WEATHER_ARGS}]
    view.set_messages([message(1, "user", "Weather in Paris?"), message(2, "assistant", "", tool_calls=calls),
                       tool_message(3), message(4, "assistant", "It is **sunny** in Paris."),
                       tool_message(5, "denied", "The person declined this call."),
                       tool_message(6, "error", "Error: the server crashed")])
    view.show()
    caller = view.widget_for(2)
    assert caller.call_line.isVisible() and caller.call_line.text() == "Calling get_weather…"
    assert not caller.body.isVisible() and not caller.copy_button.isVisible()
    assert caller.sizeHint().height() < 3 * caller.fontMetrics().lineSpacing()  # one line, not a bubble

    block, denied, failed = view.tool_blocks()
    assert block.header() in ("🔧 get_weather · ok · 0.12 s", "⚙ get_weather · ok · 0.12 s")
    assert not view.widget_for(3).header.isVisible() and not view.widget_for(3).body.isVisible()
    assert not block.expanded and not block.details.isVisible()
    assert "denied" in denied.header() and "s" not in denied.header().split("·")[-1]
    assert "error" in failed.header() and denied.toggle.styleSheet() != block.toggle.styleSheet()

    qtbot.mouseClick(block.toggle, Qt.MouseButton.LeftButton)
    assert block.expanded and block.details.isVisible()
    assert json.loads(block.arguments.toPlainText()) == WEATHER_ARGS
    assert '\n  "city": "Paris"' in block.arguments.toPlainText()  # pretty, not one line
    assert block.result.toPlainText() == "Sunny, 21 °C in Paris"
    qtbot.mouseClick(block.toggle, Qt.MouseButton.LeftButton)
    assert not block.details.isVisible()


def test_a_long_result_scrolls_and_is_cut(qtbot) -> None:
    view = ChatView(MarkdownRenderer(LIGHT))
    qtbot.addWidget(view)
    view.set_messages([tool_message(1, content="line\n" * 10_000)])
    block = view.tool_blocks()[0]
    block.set_expanded(True)
    assert block.result.height() < 20 * block.result.fontMetrics().lineSpacing()
    assert block.result.toPlainText().endswith("more characters not shown)")


def test_streamed_rounds_show_the_call_and_its_result_and_survive_a_rebuild(qtbot) -> None:
    view = ChatView(MarkdownRenderer(LIGHT))
    qtbot.addWidget(view)
    view.set_messages([message(1, "user", "Weather in Paris?")])
    view.add_message(message(2, "assistant", status=STREAMING))
    view.finish_message(2, COMPLETE)
    view.set_tool_calls(2, [{"id": "c3", "name": "get_weather", "arguments": WEATHER_ARGS}])
    view.add_message(tool_message(3))
    view.add_message(message(4, "assistant", status=STREAMING))
    view.update_text(4, "Sunny.")
    assert view.widget_for(2).call_line.text() == "Calling get_weather…"
    assert [b.header().split(" ", 1)[1] for b in view.tool_blocks()] == ["get_weather · ok · 0.12 s"]
    view.set_messages(list(view._messages))  # built again (a scroll, a new message after scrolling up)
    assert view.widget_for(2).call_line.text() == "Calling get_weather…" and len(view.tool_blocks()) == 1


# -- the dialogs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("button", "decision"), [("allowOnce", "once"), ("allowAlways", "always"),
                                                   ("deny", "deny"), (None, "deny")])
def test_the_approval_dialog_shows_the_call_and_gives_each_decision(qtbot, button: str | None,
                                                                     decision: str) -> None:
    dialog = ToolApprovalDialog({"server": "weather", "name": "get_weather", "arguments": WEATHER_ARGS,
                                 "call_id": "c1"})
    qtbot.addWidget(dialog)
    dialog.open()
    assert "get_weather" in dialog.heading.text() and "weather" in dialog.heading.text()
    assert json.loads(dialog.arguments.toPlainText()) == WEATHER_ARGS
    assert dialog.arguments.isReadOnly() and dialog.arguments.textInteractionFlags() & \
        Qt.TextInteractionFlag.TextSelectableByMouse
    with qtbot.waitSignal(dialog.decided, timeout=2000) as blocker:
        if button is None:
            qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        else:
            qtbot.mouseClick(dialog.findChild(QPushButton, button), Qt.MouseButton.LeftButton)
    assert blocker.args == [decision] and not dialog.isVisible()


def test_enter_allows_nothing_and_a_dismissed_dialog_answers_nothing(qtbot) -> None:
    dialog = ToolApprovalDialog({"server": "s", "name": "add", "arguments": {"a": 1, "b": 2}})
    qtbot.addWidget(dialog)
    answers: list[str] = []
    dialog.decided.connect(answers.append)
    dialog.open()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert answers == [] and dialog.isVisible()
    dialog.dismiss()
    assert answers == [] and not dialog.isVisible()


@pytest.mark.parametrize(("button", "started"), [("startServer", True), ("dontStart", False), (None, False)])
def test_the_server_start_dialog_shows_the_exact_command(qtbot, button: str | None, started: bool) -> None:
    line = "WEATHER_KEY=abc uvx 'weather mcp' --port 8000"
    dialog = ServerStartDialog("weather", line)
    qtbot.addWidget(dialog)
    dialog.open()
    assert "weather" in dialog.heading.text()
    assert dialog.command.toPlainText() == line and dialog.command.isReadOnly()
    with qtbot.waitSignal(dialog.decided, timeout=2000) as blocker:
        if button is None:
            qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        else:
            qtbot.mouseClick(dialog.findChild(QPushButton, button), Qt.MouseButton.LeftButton)
    assert blocker.args == [started]


# -- the Tools control ----------------------------------------------------------------------------

def test_the_tools_control_puts_servers_in_the_conversations_settings(qtbot, tools: ToolService,
                                                                      tool_paths: AppPaths) -> None:
    config = stdio_config("weather")
    config["mcpServers"]["notes"] = {"url": "http://127.0.0.1:9/mcp"}
    load(qtbot, tools, config, tool_paths)
    settings = tools.settings
    control = ToolsControl(tools, settings)
    qtbot.addWidget(control)
    assert control.text() == "Tools: off" and "No tools" in control.toolTip()
    control.rebuild_menu()
    entries = {a.objectName(): a for a in control.menu().actions()}
    assert {"server:weather", "server:notes", "toolsSettings"} <= set(entries)
    assert not entries["server:weather"].isChecked()
    entries["server:weather"].trigger()
    assert settings.generation.tools == ["weather"] and control.text() == "Tools: weather"
    assert "weather: stopped (starts with the next answer)" in control.toolTip()
    control.rebuild_menu()
    {a.objectName(): a for a in control.menu().actions()}["server:notes"].trigger()
    assert settings.generation.tools == ["weather", "notes"] and control.text() == "Tools: 2 servers"
    control.set_required("get_weather")
    assert control.text() == "Tools: 2 servers · requires get_weather"
    with qtbot.waitSignal(control.settings_requested, timeout=1000):
        control.rebuild_menu()
        {a.objectName(): a for a in control.menu().actions()}["toolsSettings"].trigger()
    control.rebuild_menu()
    {a.objectName(): a for a in control.menu().actions()}["server:weather"].trigger()
    {a.objectName(): a for a in control.menu().actions()}["server:notes"].trigger()
    assert settings.generation.tools == [] and control.text() == "Tools: off"


# -- Settings → Tools and Privacy --------------------------------------------------------------

CLAUDE_DESKTOP = """{
  "mcpServers": {
    "weather": {"command": "%s", "args": ["%s", "stdio"], "env": {"UNITS": "metric"}},
    "notes": {"url": "http://127.0.0.1:8765/mcp", "alwaysAllow": ["search"]}
  }
}
"""


def test_settings_tools_saves_a_pasted_config_and_refuses_broken_json(qtbot, tools: ToolService,
                                                                       tool_paths: AppPaths) -> None:
    load(qtbot, tools, None, tool_paths)
    panel = ToolsPanel(tools, tool_paths.mcp_config)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.empty.isVisible() and "mcpServers" in panel.empty.text()
    assert str(tool_paths.mcp_config) in panel.path_label.text()
    pasted = CLAUDE_DESKTOP % (sys.executable, SCRIPT)
    panel.editor.setPlainText(pasted)
    with qtbot.waitSignal(tools.servers_changed, timeout=5000):
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2, timeout=5000)
    assert tool_paths.mcp_config.read_text(encoding="utf-8") == pasted
    rows = [[panel.tree.topLevelItem(i).text(c) for c in range(3)] for i in range(2)]
    assert rows == [["weather", "stdio", "stopped"], ["notes", "http", "stopped"]]
    assert not panel.empty.isVisible() and panel.error_text() == "Saved."

    panel.editor.setPlainText('{"mcpServers": {"weather": ')
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "not valid JSON" in panel.error_text(), timeout=5000)
    assert "unchanged" in panel.error_text()
    assert tool_paths.mcp_config.read_text(encoding="utf-8") == pasted  # the old file is kept
    qtbot.mouseClick(panel.reload_button, Qt.MouseButton.LeftButton)
    assert panel.editor.toPlainText() == pasted and panel.error_text() == ""


def test_settings_tools_starts_a_server_after_approval_and_switches_its_tools(qtbot, tools: ToolService,
                                                                              tool_paths: AppPaths) -> None:
    load(qtbot, tools, stdio_config(), tool_paths)
    panel = ToolsPanel(tools, tool_paths.mcp_config)
    qtbot.addWidget(panel)
    asked: list[tuple[str, str]] = []
    tools.start_approval_needed.connect(lambda name, line: (asked.append((name, line)), tools.approve_start(name, True)))
    panel.select_server("weather")
    assert panel.start_stop.text() == "Start"
    qtbot.mouseClick(panel.start_stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tools.status("weather") == "running" and panel.start_stop.text() == "Stop", timeout=30_000)
    assert asked and asked[0][0] == "weather" and str(SCRIPT) in asked[0][1]
    qtbot.waitUntil(lambda: panel.tree.topLevelItem(0).childCount() >= 4, timeout=5000)
    tool_rows = {panel.tree.topLevelItem(0).child(i).text(0): panel.tree.topLevelItem(0).child(i)
                 for i in range(panel.tree.topLevelItem(0).childCount())}
    assert {"get_weather", "add"} <= set(tool_rows)
    tool_rows["add"].setCheckState(0, Qt.CheckState.Unchecked)
    assert "add" not in [s.name for s in tools.enabled_tools(["weather"])]
    assert "get_weather" in [s.name for s in tools.enabled_tools(["weather"])]


class NoSecrets:
    """No keyring is asked."""

    status = "kept in memory for this session (test)"

    def get(self, name: str) -> str | None:
        return None


def test_the_privacy_tab_lists_each_http_mcp_server(qtbot, tools: ToolService, tool_paths: AppPaths) -> None:
    secrets = SecretsService(NoSecrets())
    try:
        load(qtbot, tools, stdio_config(), tool_paths)
        panel = PrivacyPanel(NetworkLog(), secrets, tools.settings, tools=tools)
        qtbot.addWidget(panel)
        assert panel.mcp_hosts.text() == "None"  # a stdio server needs no network
        config = stdio_config()
        config["mcpServers"]["notes"] = {"url": "http://Notes.local:8765/mcp"}
        load(qtbot, tools, config, tool_paths)
        assert panel.mcp_hosts.text() == "notes.local:8765 — MCP server 'notes' (Settings → Tools)"
    finally:
        secrets.stop()



# -- the real window, the real test server -----------------------------------------------------

def click(qtbot, dialog, name: str) -> None:
    qtbot.mouseClick(dialog.findChild(QPushButton, name), Qt.MouseButton.LeftButton)


def send(qtbot, app, text: str) -> None:
    app.window.composer.setFocus()
    qtbot.keyClicks(app.window.composer, text)
    qtbot.keyClick(app.window.composer, Qt.Key.Key_Return)


def test_the_window_asks_runs_and_shows_a_required_tool_call_and_the_chat_keeps_its_tools(
        qtbot, start_cove, paths: AppPaths) -> None:
    paths.mcp_config.write_text(json.dumps(stdio_config("weather")), encoding="utf-8")
    app = start_cove()
    app.controller.settings.generation.seed, app.controller.settings.generation.max_tokens = 7, 48
    window, wiring, c = app.window, app.window.tool_wiring, app.controller
    qtbot.waitUntil(lambda: [s.name for s in app.tools.servers] == ["weather"], timeout=5000)
    control = wiring.control
    assert control.isVisible() and control.text() == "Tools: off"
    control.rebuild_menu()
    {a.objectName(): a for a in control.menu().actions()}["server:weather"].trigger()
    control.set_required("get_weather")
    assert control.text() == "Tools: weather · requires get_weather"

    send(qtbot, app, "What is the weather in Paris?")
    qtbot.waitUntil(lambda: wiring.start_dialog is not None, timeout=10_000)
    assert str(SCRIPT) in wiring.start_dialog.command.toPlainText()
    click(qtbot, wiring.start_dialog, "startServer")
    qtbot.waitUntil(lambda: wiring.call_dialog is not None, timeout=120_000)  # a loaded machine is slow
    assert "get_weather" in wiring.call_dialog.heading.text()
    click(qtbot, wiring.call_dialog, "allowOnce")
    qtbot.waitUntil(lambda: not c.busy, timeout=120_000)
    blocks = window.chat_view.tool_blocks()
    assert len(blocks) == 1 and " get_weather · ok · " in blocks[0].header(), [b.header() for b in blocks]
    assert blocks[0].result.toPlainText().startswith("Sunny, 21 °C in ")
    callers = [w for w in window.chat_view.message_widgets() if w.message.tool_calls]
    assert callers and callers[0].call_line.text() == "Calling get_weather…"
    first = c.conversation_id

    window.open_settings_dialog("Tools")  # the server runs: its tools are listed
    panel = window.settings_dialog.tools
    assert window.settings_dialog.tabs.currentWidget() is panel
    assert panel.tree.topLevelItem(0).text(2) == "running" and panel.tree.topLevelItem(0).childCount() >= 4
    assert window.settings_dialog.privacy.mcp_hosts.text() == "None"
    window.settings_dialog.reject()

    # Another conversation without tools; the first one gets its tools back when reopened.
    qtbot.mouseClick(window.sidebar.new_button, Qt.MouseButton.LeftButton)
    control.rebuild_menu()
    {a.objectName(): a for a in control.menu().actions()}["server:weather"].trigger()
    assert control.text() == "Tools: off" and c.settings.generation.require_tool == ""
    with qtbot.waitSignal(c.answer_finished, timeout=120_000):
        send(qtbot, app, "Say hello.")
    qtbot.waitUntil(lambda: not c.busy, timeout=10_000)
    assert window.chat_view.tool_blocks() == [] and wiring.call_dialog is None
    with qtbot.waitSignal(app.chat_settings.applied, timeout=5000):
        c.open_conversation(first)
    assert c.settings.generation.tools == ["weather"] and control.text().startswith("Tools: weather")
    qtbot.waitUntil(lambda: len(window.chat_view.tool_blocks()) == 1, timeout=5000)  # stored, shown again
