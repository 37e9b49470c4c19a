"""Tool calls cost little you can feel: the time from the end of the round that wrote a call (the
model's closing call marker, read by the scanner) to the tool's result shown in the window, for a
stdio MCP server and a Streamable HTTP one (the SDK's test servers), median of 20 each, in the
real window with the call always allowed. Printed with the calls' own time on the host, measured
in the same run, so the ratio says what the window's part (store, signals, widgets) adds."""

from __future__ import annotations

import json
import sys
import time

import pytest
from benchlib import median, record, spread
from PySide6.QtWidgets import QApplication

from desktop.core.tools import permissions
from desktop.core.tools.mcp_config import parse_config_text
from tests.helpers.mcp_servers import SCRIPT, http_server

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

ROUNDS = 20


def measure(qtbot, app, server: str, cid: int, answered) -> tuple[list[float], list[float]]:
    """(marker -> result shown, the host's own call time) for ``ROUNDS`` calls."""
    turn, specs = app.controller.tool_turn, app.tools.tools(server)
    permissions.allow_always(app.settings.tool_permissions, server, "get_weather")
    shown, host = [], []
    for i in range(ROUNDS):
        turn.begin(specs, "")
        results: list = []
        turn.result_added.connect(results.append)
        call = {"id": f"call_{i}", "name": "get_weather", "arguments": {"city": f"Paris {i}"}}
        started = time.perf_counter()
        turn.after_round(cid, answered, [call], lambda _results, _answer: None, lambda _problem: None)
        qtbot.waitUntil(lambda got=results: bool(got) and app.window.chat_view.widget_for(got[0].id) is not None,
                        timeout=20_000)
        QApplication.processEvents()
        shown.append(time.perf_counter() - started)
        turn.result_added.disconnect(results.append)
        host.append(results[0].tool["duration_s"])
    return shown, host


def test_bench_call_marker_to_result_shown(qtbot, start_cove):
    with http_server() as (url, _port):
        app = start_cove(wait_model=False)
        text = json.dumps({"mcpServers": {"local": {"command": sys.executable, "args": [str(SCRIPT), "stdio"]},
                                          "web": {"url": url}}})
        servers = parse_config_text(text)
        app.tools.servers = servers
        for server in servers:  # started here, ahead: the start is not what is measured
            app.tools._host.start(server)
        qtbot.waitUntil(lambda: app.store.available, timeout=20_000)
        created: list = []
        app.store.submit(lambda s: s.create_conversation_with_message("Bench", "", "Weather?"), created.append)
        qtbot.waitUntil(lambda: bool(created), timeout=20_000)
        conversation, question = created[0]
        app.controller.open_conversation(conversation.id)
        qtbot.waitUntil(lambda: app.controller.conversation_id == conversation.id, timeout=20_000)
        for server, label in (("local", "stdio"), ("web", "HTTP")):
            shown, host = measure(qtbot, app, server, conversation.id, question)
            record("tools", f"call marker -> result shown, {label}", median(shown) * 1000, "ms", digits=1)
            record("tools", f"  spread ({label})", spread([s * 1000 for s in shown]), "ms")
            record("tools", f"  the call itself on the host ({label})", median(host) * 1000, "ms", digits=1)
            record("tools", f"  window's share ({label})", median(shown) / max(median(host), 1e-6), "x", digits=2)
