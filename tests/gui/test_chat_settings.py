"""Per-conversation settings and named presets, through the real Settings dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import ask


def settings_ok(qtbot, app) -> None:
    dialog = app.window.settings_dialog
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_conversations_keep_their_settings_and_new_ones_start_from_the_last_preset(qtbot, start_cove) -> None:
    app = start_cove()
    c = app.controller
    app.window.open_settings_dialog("Generation")
    panel = app.window.settings_dialog.generation
    panel.system_prompt.setPlainText("Answer in one short sentence.")
    panel.temperature.setValue(0.2)
    panel.max_tokens.setValue(24)
    qtbot.mouseClick(panel.save_preset, Qt.MouseButton.LeftButton)
    panel.name_dialog.setTextValue("Terse")
    panel.name_dialog.accept()
    qtbot.waitUntil(lambda: panel.preset.currentText() == "Terse", timeout=5000)
    settings_ok(qtbot, app)
    assert c.settings.generation.temperature == 0.2 and c.settings.last_preset == "Terse"
    _id, status, _stats = ask(qtbot, app, "What is the capital of France?")
    assert status == "complete"
    first = c.conversation_id

    # A second conversation starts from the preset; change it there only.
    with qtbot.waitSignal(app.chat_settings.applied, timeout=5000) as blocker:
        qtbot.mouseClick(app.window.sidebar.new_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["Terse"]
    assert c.settings.generation.system_prompt == "Answer in one short sentence."
    app.window.open_settings_dialog("Generation")
    panel = app.window.settings_dialog.generation
    assert panel.preset.currentText() == "Terse" and panel.temperature.value() == 0.2
    panel.preset.setCurrentIndex(0)  # no preset: this conversation's own settings
    panel.temperature.setValue(1.3)
    panel.system_prompt.setPlainText("You are a pirate.")
    settings_ok(qtbot, app)
    _id, status, _stats = ask(qtbot, app, "Say hello.")
    assert status == "complete"
    second = c.conversation_id
    assert second != first

    # Back to the first conversation: its own settings come back.
    with qtbot.waitSignal(app.chat_settings.applied, timeout=5000):
        c.open_conversation(first)
    assert c.settings.generation.temperature == 0.2
    assert c.settings.generation.system_prompt == "Answer in one short sentence."

    # Editing the fields after choosing a preset: the edit is this conversation's, the preset stays.
    app.window.open_settings_dialog("Generation")
    panel = app.window.settings_dialog.generation
    assert panel.preset.currentText() == "Terse"
    panel.temperature.setValue(0.9)
    assert panel.chosen_preset() == ""
    settings_ok(qtbot, app)
    assert c.settings.generation.temperature == 0.9 and app.chat_settings.conversation_preset == ""
    assert c.settings.last_preset == "Terse"  # new conversations still start from the last preset chosen
    assert next(p for p in app.chat_settings.presets if p.name == "Terse").settings["generation"]["temperature"] == 0.2
    app.window.close()
    app.shutdown()

    app = start_cove()  # after a restart, the second conversation still has its own settings
    with qtbot.waitSignal(app.chat_settings.applied, timeout=5000):
        app.controller.open_conversation(second)
    assert app.controller.settings.generation.temperature == 1.3
    assert app.controller.settings.generation.system_prompt == "You are a pirate."
    app.window.open_settings_dialog("Generation")
    panel = app.window.settings_dialog.generation
    qtbot.waitUntil(lambda: panel.preset.count() == 2, timeout=5000)
    assert panel.preset.itemText(1) == "Terse"
    app.window.settings_dialog.reject()
