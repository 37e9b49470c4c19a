"""Privacy settings: every network attempt of this session, the Hugging Face token, and whether
message text may go into the log."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core.system import logs
from desktop.core.system.network_guard import NetworkEvent, NetworkLog
from desktop.core.system.settings import Settings
from desktop.core.tools.mcp_config import http_hosts
from desktop.services.engine_service import hosts_of
from desktop.services.secrets_service import SecretsService
from desktop.services.tool_service import ToolService

INTRO = ("Cove never sends what you type anywhere. It uses the network only when you search for or "
         "download models, and it refuses every other connection. Each attempt of this session is listed here.")
MCP_INTRO = ("mcp.json names these servers, so connections to exactly these hosts and ports are let through "
             "while a conversation uses them; local (command) servers need no network.")
DEBUG_LOG_LABEL = "Include message text in the log (for debugging)"
DEBUG_LOG_TIP = ("Cove's log records what it does and what fails, never what you write or what the model answers. "
                 "Turn this on only to show a problem to someone; turn it off again afterwards.")


class PrivacyPanel(QWidget):
    """Network activity, token and log content. Signals: _event_arrived(object) (internal, any thread -> GUI).

    ``settings``: where the debug-log switch is kept (saved with the other settings at shutdown);
    without it the switch is hidden."""

    _event_arrived = Signal(object)

    def __init__(self, network: NetworkLog, secrets: SecretsService, settings: Settings | None = None,
                 parent: QWidget | None = None, tools: ToolService | None = None, engines: Any = None) -> None:
        super().__init__(parent)
        self._secrets = secrets
        self._engines = engines  # an EngineService: the remote engines added in Settings → Engines
        self._settings = settings
        self._tools = tools
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Time", "Kind", "Host", "Port", "Purpose", "Result"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.empty = QLabel("No network activity in this session.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.token_field = QLineEdit()
        self.token_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_field.setPlaceholderText("hf_… (only needed for gated or private models)")
        self.save_token = QPushButton("Save token")
        self.forget_token = QPushButton("Forget token")
        self.token_status = QLabel("Checking the system keyring…")
        self.token_status.setWordWrap(True)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_field, 1)
        token_row.addWidget(self.save_token)
        token_row.addWidget(self.forget_token)
        token_box = QGroupBox("Hugging Face token")
        token_layout = QVBoxLayout(token_box)
        token_layout.addLayout(token_row)
        token_layout.addWidget(self.token_status)

        activity = QGroupBox("Network activity")
        activity_layout = QVBoxLayout(activity)
        activity_layout.addWidget(intro)
        activity_layout.addWidget(self.empty)
        activity_layout.addWidget(self.table, 1)
        self.debug_log = QCheckBox(DEBUG_LOG_LABEL)
        self.debug_log.setToolTip(DEBUG_LOG_TIP)
        self.debug_log.setChecked(bool(settings and settings.debug_log))
        self.debug_log.setVisible(settings is not None)
        self.debug_log.toggled.connect(self._set_debug_log)
        layout = QVBoxLayout(self)
        layout.addWidget(activity, 1)
        layout.addWidget(self._build_mcp_hosts())
        layout.addWidget(token_box)
        layout.addWidget(self.debug_log)

        for event in network.events():
            self._add_row(event)
        self._event_arrived.connect(self._add_row)
        network.subscribe(self._event_arrived.emit)
        self.save_token.clicked.connect(self._save)
        self.forget_token.clicked.connect(secrets.forget_token)
        secrets.status.connect(self._on_status)
        secrets.check()
        self._update_empty()

    def _build_mcp_hosts(self) -> QGroupBox:
        """The HTTP MCP servers of mcp.json: the only hosts, besides the Hub, Cove connects to."""
        box = QGroupBox("MCP servers and engines Cove may connect to")
        intro = QLabel(MCP_INTRO)
        intro.setWordWrap(True)
        self.mcp_hosts = QLabel()
        self.mcp_hosts.setObjectName("mcpHosts")
        self.mcp_hosts.setWordWrap(True)
        self.mcp_hosts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(intro)
        box_layout.addWidget(self.mcp_hosts)
        self.show_mcp_hosts()
        if self._tools is not None:
            self._tools.servers_changed.connect(self.show_mcp_hosts)
        if self._engines is not None:
            self._engines.listed.connect(self.show_mcp_hosts)
        return box

    @Slot()
    @Slot(list)
    def show_mcp_hosts(self, *_listings: Any) -> None:
        """List host:port and purpose of each HTTP MCP server ("None" without any)."""
        try:
            hosts = http_hosts(self._tools.servers) if self._tools is not None else []
        except ValueError:  # mcp.json changed under a bad URL: its reading reports it
            hosts = []
        lines = [f"{host}:{port} — MCP server '{name}' (Settings → Tools)" for host, port, name in hosts]
        if self._engines is not None:
            engines = hosts_of(self._engines.listings)
            lines += [f"{where} — engine '{name}' (Settings → Engines)" for where, name in engines]
        self.mcp_hosts.setText("\n".join(lines) if lines else "None")

    def rows(self) -> list[list[str]]:
        """The table's text, row by row."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    @Slot(object)
    def _add_row(self, event: NetworkEvent) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        values = [time.strftime("%H:%M:%S", time.localtime(event.at)), event.kind, event.host, str(event.port),
                  event.purpose or "nobody asked for it", "allowed" if event.allowed else "blocked"]
        for column, value in enumerate(values):
            self.table.setItem(row, column, QTableWidgetItem(value))
        self._update_empty()

    def _update_empty(self) -> None:
        self.empty.setVisible(self.table.rowCount() == 0)
        self.table.setVisible(self.table.rowCount() > 0)

    def _save(self) -> None:
        self._secrets.save_token(self.token_field.text())
        self.token_field.clear()

    @Slot(bool)
    def _set_debug_log(self, on: bool) -> None:
        if self._settings is not None:
            self._settings.debug_log = on
        logs.set_debug(on)

    @Slot(bool, str)
    def _on_status(self, present: bool, where: str) -> None:
        self.token_status.setText(("A token is saved: " if present else "No token saved. Secrets are ") + where + ".")
