"""The Hardware tab: GPU controls explain themselves on a CPU-only build; cache and attention apply."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop.ui.settings.hardware_panel import CPU_ONLY_EXPLANATION
from tests.gui.conftest import ask


def test_gpu_controls_explain_why_they_are_unavailable_on_a_cpu_only_build(qtbot, cove):
    info = cove.controller.model_info
    assert info["gpu_offload"] is False  # these machines have a CPU-only llama.cpp
    assert "CPU" in info["system_info"]
    cove.window.open_settings_dialog("Hardware")
    panel = cove.window.settings_dialog.hardware
    assert cove.window.settings_dialog.tabs.currentWidget() is panel
    assert not panel.gpu_layers.isEnabled() and panel.gpu_layers.isVisible()  # shown, with the reason
    assert panel.gpu_note.text() == CPU_ONLY_EXPLANATION and panel.gpu_note.isVisible()
    assert "CPU only" in panel.backend.text()
    for line in ("CPU: ", "Memory: ", "llama.cpp build: "):  # HardwareInfo.summary(), read off the GUI thread
        assert line in panel.backend.text(), panel.backend.text()
    cove.window.settings_dialog.reject()


def test_quantized_kv_cache_and_flash_attention_reload_the_model(qtbot, cove):
    cove.window.open_settings_dialog("Hardware")
    dialog = cove.window.settings_dialog
    panel = dialog.hardware
    panel.cache_type.setCurrentIndex(panel.cache_type.findData("q8_0"))
    with qtbot.waitSignal(cove.controller.model_state, timeout=60_000,
                          check_params_cb=lambda state, _t: state in ("ready", "failed")) as blocker:
        qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "ready"
    info = cove.controller.model_info
    assert info["kv_cache_type"] == "q8_0" and info["flash_attention"] is True
    assert cove.controller.settings.acceleration.kv_cache_type == "q8_0"
    _id, status, stats = ask(qtbot, cove, "Say something short.")
    assert status == "complete" and stats["completion_tokens"] > 0
