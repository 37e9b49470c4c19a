"""The *Tools* control beside the composer: which MCP servers this conversation may use.

A button whose text says what is on ("Tools: off", "Tools: weather", "Tools: 2 servers ·
requires get_weather") and whose menu has one checkable entry per server of mcp.json, a *Require
a tool* submenu (the switched-on tools of the chosen servers that run) and *Tools settings…*.
The choice is the conversation's ``settings.generation.tools`` / ``require_tool``, stored with
its other settings when the next answer starts (like the *Think* choice).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QStyle, QToolButton, QWidget

from desktop.core.system.settings import GenerationSettings, Settings
from desktop.services.tool_service import ToolService

NO_SERVERS = "No MCP servers yet: add them in Tools settings…"
MAX_LABEL = 60  # a server's menu entry, longer statuses (a failure's message) in its tooltip


class ToolsControl(QToolButton):
    """Signals: changed() after the person picked servers or a required tool; settings_requested()
    for *Tools settings…*."""

    changed = Signal()
    settings_requested = Signal()

    def __init__(self, tools: ToolService, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolsControl")
        self._tools = tools
        self._settings = settings
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setMenu(QMenu(self))
        self.menu().setToolTipsVisible(True)
        self.menu().aboutToShow.connect(self.rebuild_menu)
        tools.servers_changed.connect(self.refresh)
        self.refresh()

    def sizeHint(self) -> QSize:
        """Wide enough for the text and the menu arrow (Fusion leaves the arrow over the text)."""
        hint = super().sizeHint()
        arrow = self.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, None, self)
        return QSize(hint.width() + arrow, hint.height())

    @property
    def generation(self) -> GenerationSettings:
        """The open conversation's settings (the object is replaced when a conversation opens)."""
        return self._settings.generation

    def chosen(self) -> list[str]:
        """The configured servers this conversation may use, in mcp.json's order."""
        wanted = set(self.generation.tools)
        return [s.name for s in self._tools.servers if s.name in wanted]

    def available_tools(self) -> list[tuple[str, str]]:
        """(server, tool) of the switched-on tools of the chosen servers that run."""
        enabled = self._tools.enabled_tools(self.chosen())
        return [(spec.server, spec.name) for spec in enabled]

    # -- what it shows -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the conversation's choice on the button and in its tooltip."""
        chosen = self.chosen()
        if not chosen:
            text = "Tools: off"
        elif len(chosen) == 1:
            text = f"Tools: {chosen[0]}"
        else:
            text = f"Tools: {len(chosen)} servers"
        if chosen and self.generation.require_tool:
            text += f" · requires {self.generation.require_tool}"
        self.setText(text)
        self.setToolTip(self._tooltip(chosen))

    def _tooltip(self, chosen: list[str]) -> str:
        if not chosen:
            return ("No tools: the model only writes text. Pick MCP servers here whose tools it may call "
                    "in this conversation (set them up in Settings → Tools).")
        lines = ["Tools the model may call in this conversation (each call asks you first):"]
        for name in chosen:
            if self._tools.status(name) == "running":
                names = [s.name for s in self._tools.enabled_tools([name])]
                lines.append(f"• {name}: {', '.join(names) if names else 'no tools switched on'}")
            else:
                lines.append(f"• {name}: {self._tools.status(name)} (starts with the next answer)")
        return "\n".join(lines)

    # -- the menu ----------------------------------------------------------------------------
    def rebuild_menu(self) -> None:
        """Fill the menu from the servers as they are now."""
        menu = self.menu()
        menu.clear()
        menu.addSection("MCP servers for this conversation")
        chosen = set(self.chosen())
        for server in self._tools.servers:
            label = self._server_label(server.name, server.enabled)
            action = menu.addAction(label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 2] + "…)")
            action.setToolTip(label)
            action.setObjectName(f"server:{server.name}")
            action.setCheckable(True)
            action.setChecked(server.name in chosen)
            action.setEnabled(server.enabled)
            action.toggled.connect(lambda on, name=server.name: self.set_server(name, on))
        if not self._tools.servers:
            menu.addAction(NO_SERVERS).setEnabled(False)
        menu.addSeparator()
        self._add_require_menu(menu)
        menu.addSeparator()
        settings = menu.addAction("Tools settings…")
        settings.setObjectName("toolsSettings")
        settings.triggered.connect(self.settings_requested)

    def _server_label(self, name: str, enabled: bool) -> str:
        if not enabled:
            return f"{name}  (disabled in mcp.json)"
        status = self._tools.status(name)
        if status == "running":
            count = len(self._tools.tools(name))
            return f"{name}  (running · {count} tool{'s' if count != 1 else ''})"
        return f"{name}  ({status})"

    def _add_require_menu(self, menu: QMenu) -> None:
        sub = menu.addMenu("Require a tool")
        sub.setObjectName("requireMenu")
        sub.setToolTip("The next answer must call this tool first")
        group = QActionGroup(sub)
        current = self.generation.require_tool
        options = [("", "None")] + [(tool, f"{tool}  ({server})") for server, tool in self.available_tools()]
        for tool, label in options:
            action = QAction(label, sub, checkable=True, checked=tool == current)
            action.setObjectName(f"require:{tool}")
            action.triggered.connect(lambda _on=False, t=tool: self.set_required(t))
            group.addAction(action)
            sub.addAction(action)
        if len(options) == 1:
            hint = sub.addAction("(the tools appear once a chosen server runs)")
            hint.setEnabled(False)

    # -- changing the choice ---------------------------------------------------------------------
    def set_server(self, name: str, on: bool) -> None:
        """Let this conversation use server ``name`` (or not)."""
        names = [n for n in self.generation.tools if n != name]
        if on:
            names.append(name)
        self.generation.tools = names
        required = self.generation.require_tool
        if required and not on and not any(tool == required for _server, tool in self.available_tools()):
            self.generation.require_tool = ""
        self.refresh()
        self.changed.emit()

    def set_required(self, tool: str) -> None:
        """The tool the next answer must call first ('' for none)."""
        self.generation.require_tool = tool
        self.refresh()
        self.changed.emit()
