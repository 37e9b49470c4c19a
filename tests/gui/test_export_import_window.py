"""Export and import from the window: the sidebar's menus, real file dialogs, the real store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gui.conftest import ask

FIXTURES = Path(__file__).parent.parent / "fixtures"


def choose_file(qtbot, window, path: Path) -> None:
    """Type a path into the (non-native) file dialog that just opened and accept it."""
    dialog = window.file_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.selectFile(str(path))
    dialog.accept()


def test_export_one_conversation_and_all_then_import_chatgpt(qtbot, cove, tmp_path: Path) -> None:
    window = cove.window
    _mid, status, _stats = ask(qtbot, cove, "Which ocean is the largest?")
    assert status == "complete"
    cid = cove.controller.conversation_id

    window.sidebar.export_requested.emit(cid)  # the conversation's context menu: Export…
    target = tmp_path / "one.md"
    with qtbot.waitSignal(window.transfer.done, timeout=10_000) as blocker:
        choose_file(qtbot, window, target)
    assert "Exported 1 conversation" in blocker.args[0]
    assert "Which ocean is the largest?" in target.read_text()
    qtbot.waitUntil(lambda: "Exported 1 conversation" in window.statusBar().currentMessage(), timeout=2000)

    window.sidebar.export_all_action.trigger()  # the ⋯ menu: Export all conversations…
    everything = tmp_path / "all.json"
    with qtbot.waitSignal(window.transfer.done, timeout=10_000):
        choose_file(qtbot, window, everything)
    data = json.loads(everything.read_text())
    assert "Which ocean is the largest?" in json.dumps(data)

    window.sidebar.import_action.trigger()  # the ⋯ menu: Import conversations…
    with qtbot.waitSignal(window.transfer.done, timeout=10_000) as blocker:
        choose_file(qtbot, window, FIXTURES / "chatgpt_conversations.json")
    assert "from a ChatGPT export" in blocker.args[0]
    titles = [c["title"] for c in json.loads((FIXTURES / "chatgpt_conversations.json").read_text())]
    qtbot.waitUntil(lambda: all(any(t in window.sidebar.list.item(i).text() for i in range(window.sidebar.list.count()))
                                for t in titles), timeout=5000)

    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "cove", "conversations": [')
    window.sidebar.import_action.trigger()
    with qtbot.waitSignal(window.transfer.failed, timeout=10_000) as blocker:
        choose_file(qtbot, window, broken)
    assert "not valid JSON" in blocker.args[0] and "Nothing was imported" in blocker.args[0]
    assert window.banner_box.isVisible()
