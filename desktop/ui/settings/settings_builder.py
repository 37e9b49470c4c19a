"""The Settings dialog as the window opens it: its panels built from the services, its answers
connected to them (per-conversation settings and presets, or the controller alone)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from desktop.core.system.network_guard import NetworkLog
from desktop.services.chat_controller import ChatController
from desktop.services.chat_settings_service import ChatSettingsService
from desktop.services.secrets_service import SecretsService
from desktop.services.tool_service import ToolService
from desktop.ui.settings.hardware_panel import HardwarePanel
from desktop.ui.settings.privacy_panel import PrivacyPanel
from desktop.ui.settings.settings_dialog import SettingsDialog
from desktop.ui.settings.tools_panel import ToolsPanel


def build_settings_dialog(parent: QWidget, controller: ChatController, chat_settings: ChatSettingsService | None,
                          network: NetworkLog, secrets: SecretsService, tools: ToolService | None = None,
                          mcp_config: Path | None = None,
                          extra_tabs: Sequence[tuple[str, Callable[[], QWidget]]] = (),
                          engines: Any = None) -> SettingsDialog:
    """A new Settings dialog (not shown yet) for the open conversation; ``extra_tabs`` are
    (name, factory) pairs for tabs that app.py adds (Server, Engines)."""
    c, cs = controller, chat_settings
    hardware = HardwarePanel(c.settings.acceleration, c.model_info if c.model_ready else {},
                             c.settings.gpu_layers_by_model.get(c.model_path))
    privacy = PrivacyPanel(network, secrets, c.settings, tools=tools, engines=engines)
    dialog = SettingsDialog(c.settings.generation, privacy, hardware, parent,
                            presets=cs.presets if cs else [], current_preset=cs.conversation_preset if cs else "",
                            tools=ToolsPanel(tools, mcp_config) if tools is not None else None,
                            extra_tabs=[(name, make()) for name, make in extra_tabs])
    if cs is not None:
        dialog.applied.connect(lambda values: cs.apply(*values))
        dialog.generation.save_preset_requested.connect(cs.save_preset)
        dialog.generation.delete_preset_requested.connect(cs.delete_preset)
        cs.refresh_presets()
    else:
        dialog.applied.connect(lambda values: c.apply_generation_settings(*values[:3]))
    return dialog
