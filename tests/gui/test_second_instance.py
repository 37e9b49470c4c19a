"""Two windows on the same data (the second is read-only), and a damaged database at start-up."""

from __future__ import annotations

import sqlite3

from desktop.core.conversations.store import Store
from desktop.core.system.locks import READ_ONLY_MESSAGE


def test_a_second_window_is_read_only_and_says_so(qtbot, paths, start_cove):
    store = Store(paths.database)
    conv = store.create_conversation("Shared")
    store.add_message(conv.id, "user", "written before")
    store.close()
    first = start_cove(wait_model=False, safe_mode=True)
    qtbot.waitUntil(lambda: first.store.available, timeout=10_000)
    second = start_cove(wait_model=False, safe_mode=True)
    assert not first.read_only and second.read_only
    qtbot.waitUntil(lambda: second.store.available, timeout=10_000)
    assert second.window.banner_box.isVisible() and second.window.banner.text() == READ_ONLY_MESSAGE
    assert "already running" in READ_ONLY_MESSAGE and "read-only" in READ_ONLY_MESSAGE

    listed = []
    second.controller.conversations_changed.connect(listed.append)
    second.controller.refresh_conversations()
    qtbot.waitUntil(lambda: bool(listed), timeout=5_000)
    assert [c.title for c in listed[-1]] == ["Shared"]  # reading works

    second.controller.model_ready = True  # even with a model, nothing can be sent from here
    composer = second.window.composer
    assert composer.isReadOnly() and "Read-only" in composer.placeholderText()
    assert not second.window.send_button.isEnabled() and not second.window.regenerate_button.isEnabled()
    assert not second.window.models_button.isEnabled() and second.window.open_models_dialog() is None
    qtbot.keyClicks(composer, "Hello")
    assert composer.toPlainText() == ""  # typing does nothing here
    composer.setPlainText("Hello")  # and a send that gets through anyway is refused by the store
    with qtbot.waitSignal(second.store.error, timeout=5_000) as blocker:
        second.window.send(composer.toPlainText())
    assert blocker.args[0] == READ_ONLY_MESSAGE
    qtbot.waitUntil(lambda: composer.toPlainText() == "Hello", timeout=5_000)  # the draft is kept
    assert not second.controller.busy

    done = []
    first.store.submit(lambda s: s.add_message(conv.id, "assistant", "the first window still writes",
                                               parent_id=1), done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    second.window.close()
    second.shutdown()
    first.window.close()
    first.shutdown()
    check = Store(paths.database)
    try:
        assert check.integrity_check() == "ok"
        assert [m.content for m in check.active_path(conv.id)] == ["written before", "the first window still writes"]
    finally:
        check.close()
    third = start_cove(wait_model=False, safe_mode=True)  # the lock went with the first window
    assert not third.read_only


def test_a_damaged_database_is_recovered_and_the_window_says_so(qtbot, paths, start_cove):
    store = Store(paths.database)
    for i in range(5):
        conv = store.create_conversation(f"Chat {i}")
        store.add_message(conv.id, "user", f"question {i}")
    store.close()
    db = sqlite3.connect(str(paths.database))
    [(page,)] = db.execute("SELECT pageno FROM dbstat WHERE name = 'conversations_by_update'").fetchall()
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    damaged = bytearray(paths.database.read_bytes())
    damaged[(page - 1) * size] = 0x00
    paths.database.write_bytes(bytes(damaged))

    app = start_cove(wait_model=False, safe_mode=True)
    qtbot.waitUntil(lambda: "was damaged" in app.window.banner.text(), timeout=10_000)
    assert "Cove kept a copy at" in app.window.banner.text()
    assert "recovered all 5 conversations (5 messages)" in app.window.banner.text()
    kept = [p for p in paths.data_dir.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(damaged)
    assert app.store.available and not app.store.failure
