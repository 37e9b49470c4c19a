"""A full disk: a clear message, the draft kept, nothing saved lost, the app still starts."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop.core.conversations.store import Store
from tests.gui.conftest import ask
from tests.helpers.report import report


def fill_disk(app) -> None:
    """Let the database grow no further (SQLite's own way to simulate a full disk)."""
    app.store.submit(lambda s: s._db.execute(
        "PRAGMA max_page_count = " + str(s._db.execute("PRAGMA page_count").fetchone()[0])))
    app.store.wait_idle()


def test_full_disk_keeps_the_draft_and_the_history(qtbot, paths, start_cove):
    app = start_cove()
    app.controller.settings.generation.max_tokens = 16
    ask(qtbot, app, "Before the disk fills up.")
    fill_disk(app)
    draft = "A long message I do not want to type again. " * 200
    composer = app.window.composer
    composer.setPlainText(draft)
    with qtbot.waitSignal(app.store.error, timeout=10_000) as blocker:
        qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert "disk is full" in blocker.args[0]
    qtbot.waitUntil(lambda: composer.toPlainText() == draft, timeout=5_000)
    assert app.window.banner_box.isVisible() and "disk is full" in app.window.banner.text()
    assert not app.controller.busy and app.window.send_button.isVisible()
    assert len(app.window.chat_view.message_widgets()) == 2
    app.window.close()
    app.shutdown()

    store = Store(paths.database)
    assert store.integrity_check() == "ok"
    [conversation] = store.list_conversations()
    assert [m.content for m in store.active_path(conversation.id)][0] == "Before the disk fills up."
    store.close()
    again = start_cove()  # with space again, Cove starts and carries on
    _id, status, _stats = ask(qtbot, again, "After.")
    assert status == "complete"

    report("full disk", "message shown, draft kept, history intact, app restarts")
