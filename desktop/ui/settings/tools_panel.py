"""Settings → Tools: the MCP servers of mcp.json, their status and tools, and the file itself.

The tree lists each server (name, kind, status) with its tools as checkable children (a tool
switched off is never offered to a model); *Start* goes through the same approval as an answer
does. The editor below holds mcp.json as text: *Save* checks it first and shows what is wrong
in place, leaving the file as it was; *Reload* reads it again. Changes here apply at once.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from desktop.core.tools import permissions
from desktop.core.tools.mcp_config import HTTP, ServerConfig
from desktop.services.tool_service import ToolService

INTRO = ("MCP servers give models tools: look up the weather, search your notes, read files. Cove starts "
         "a server only after you allowed its command, and asks before each call unless you chose "
         "<i>Always allow</i>. Pick the servers a conversation may use with the <i>Tools</i> button "
         "beside the message box.")
EMPTY = ("<b>No MCP servers yet.</b> Paste the <code>mcpServers</code> object from Claude Desktop, "
         "LM Studio or Cursor into mcp.json below, or write one:"
         "<pre>{\n  \"mcpServers\": {\n    \"weather\": {\"command\": \"uvx\", \"args\": [\"weather-mcp\"]},\n"
         "    \"notes\": {\"url\": \"http://127.0.0.1:8000/mcp\"}\n  }\n}</pre>"
         "<code>command</code> is a program Cove starts on this computer; <code>url</code> a server it "
         "reaches over HTTP (Streamable HTTP).")
SERVER_ROLE = Qt.ItemDataRole.UserRole
TOOL_ROLE = Qt.ItemDataRole.UserRole + 1
ERROR_STYLE = "color: #d13438;"


class ToolsPanel(QWidget):
    """The Tools tab (``config_path``: where mcp.json is, shown to the person)."""

    def __init__(self, tools: ToolService, config_path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tools = tools
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_servers())
        splitter.addWidget(self._build_editor(config_path))
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([220, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(splitter, 1)
        self._refill = QTimer(self)
        self._refill.setSingleShot(True)
        self._refill.setInterval(0)  # after the signal that changed them: the tree is rebuilt outside its own slots
        self._refill.timeout.connect(self.fill_tree)
        tools.servers_changed.connect(self._refill.start)
        self.fill_tree()

    # -- building ------------------------------------------------------------------------------
    def _build_servers(self) -> QGroupBox:
        box = QGroupBox("Servers")
        self.tree = QTreeWidget()
        self.tree.setObjectName("toolsTree")
        self.tree.setHeaderLabels(["Name", "Kind", "Status"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(lambda *_a: self._update_start_button())
        self.empty = QLabel(EMPTY)
        self.empty.setObjectName("toolsEmpty")
        self.empty.setWordWrap(True)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_stop = QPushButton("Start")
        self.start_stop.setObjectName("startStopServer")
        self.start_stop.clicked.connect(self._start_or_stop)
        self.server_note = QLabel()
        self.server_note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.server_note, 1)
        row.addWidget(self.start_stop)
        layout = QVBoxLayout(box)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        return box

    def _build_editor(self, config_path: Path | None) -> QGroupBox:
        box = QGroupBox("mcp.json")
        self.path_label = QLabel(f"File: {config_path}" if config_path else "")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.editor = QPlainTextEdit(self._tools.config_text())
        self.editor.setObjectName("mcpEditor")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setTabChangesFocus(True)
        self.error = QLabel()
        self.error.setObjectName("mcpError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("saveMcp")
        self.save_button.setToolTip("Check mcp.json and write it (nothing is written when it has a mistake)")
        self.save_button.clicked.connect(self.save)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reloadMcp")
        self.reload_button.setToolTip("Read mcp.json again from the disk (your edits here are dropped)")
        self.reload_button.clicked.connect(self.reload)
        row = QHBoxLayout()
        row.addWidget(self.error, 4)
        row.addStretch(1)  # the buttons keep their size when no message is shown
        row.addWidget(self.reload_button)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(box)
        layout.addWidget(self.path_label)
        layout.addWidget(self.editor, 1)
        layout.addLayout(row)
        return box

    # -- the file ---------------------------------------------------------------------------
    def save(self) -> None:
        """Check and write the editor's text; the error is shown in place when it is wrong."""
        self.save_button.setEnabled(False)
        self._tools.save_config(self.editor.toPlainText(), self._saved, self._save_failed)

    def _saved(self) -> None:
        if isValid(self):
            self.save_button.setEnabled(True)
            self._show_note("Saved.", error=False)

    def _save_failed(self, exc: BaseException) -> None:
        if isValid(self):
            self.save_button.setEnabled(True)
            self._show_note(f"Not saved, the file is unchanged: {exc}", error=True)

    def _show_note(self, text: str, error: bool) -> None:
        self.error.setText(text)
        self.error.setStyleSheet(ERROR_STYLE if error else "color: palette(placeholder-text);")
        self.error.setVisible(bool(text))

    def error_text(self) -> str:
        """The message under the editor ('' when none is shown)."""
        return self.error.text() if not self.error.isHidden() else ""

    def reload(self) -> None:
        """Read mcp.json again into the editor and the server list."""
        self.editor.setPlainText(self._tools.config_text())
        self._show_note("", error=False)
        self._tools.reload()

    # -- the servers -------------------------------------------------------------------------
    def fill_tree(self) -> None:
        """List the servers as they are now (keeping the selection and what was unfolded)."""
        if not isValid(self):
            return
        current = self.selected_server()
        unfolded = {self.tree.topLevelItem(i).data(0, SERVER_ROLE) for i in range(self.tree.topLevelItemCount())
                    if self.tree.topLevelItem(i).isExpanded()}
        self.tree.blockSignals(True)
        self.tree.clear()
        for server in self._tools.servers:
            item = self._server_item(server)
            self.tree.addTopLevelItem(item)
            item.setExpanded(server.name in unfolded or server.name == current)
            if server.name == current:
                self.tree.setCurrentItem(item)
        if self.tree.currentItem() is None and self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self.tree.blockSignals(False)
        has_servers = bool(self._tools.servers)
        self.empty.setVisible(not has_servers)
        self.tree.setVisible(has_servers)
        self.start_stop.setVisible(has_servers)
        self._update_start_button()

    def _server_item(self, server: ServerConfig) -> QTreeWidgetItem:
        status = "disabled in mcp.json" if not server.enabled else self._tools.status(server.name)
        where = server.url if server.kind == HTTP else server.command
        item = QTreeWidgetItem([server.name, server.kind, status])
        item.setData(0, SERVER_ROLE, server.name)
        item.setToolTip(0, where)
        item.setToolTip(2, status)
        perms = self._tools.settings.tool_permissions
        for spec in self._tools.tools(server.name):
            always = permissions.always_allowed(perms, server.name, spec.name)
            child = QTreeWidgetItem([spec.name, "tool", "always allowed" if always else "asks before each call"])
            child.setData(0, SERVER_ROLE, server.name)
            child.setData(0, TOOL_ROLE, spec.name)
            child.setToolTip(0, spec.description or spec.name)
            child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            enabled = permissions.tool_enabled(perms, server.name, spec.name)
            child.setCheckState(0, Qt.CheckState.Checked if enabled else Qt.CheckState.Unchecked)
            item.addChild(child)
        return item

    def selected_server(self) -> str:
        """The server of the selected row ('' when none)."""
        item = self.tree.currentItem()
        return str(item.data(0, SERVER_ROLE) or "") if item is not None else ""

    def select_server(self, name: str) -> None:
        """Select the row of server ``name``."""
        for i in range(self.tree.topLevelItemCount()):
            if self.tree.topLevelItem(i).data(0, SERVER_ROLE) == name:
                self.tree.setCurrentItem(self.tree.topLevelItem(i))

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        tool = item.data(0, TOOL_ROLE)
        if column == 0 and tool:
            self._tools.set_tool_enabled(str(item.data(0, SERVER_ROLE)), str(tool),
                                         item.checkState(0) == Qt.CheckState.Checked)

    def _update_start_button(self) -> None:
        name = self.selected_server()
        server = self._tools.server(name) if name else None
        status = self._tools.status(name) if server else ""
        self.start_stop.setText("Stop" if status == "running" else "Starting…" if status == "starting" else "Start")
        self.start_stop.setEnabled(server is not None and server.enabled and status != "starting")

    def _start_or_stop(self) -> None:
        name = self.selected_server()
        if not name:
            return
        if self._tools.status(name) == "running":
            self._tools.stop_server(name)
            return
        self.server_note.setText(f"Starting {name}…")
        self._tools.ensure_started([name], lambda _specs: self._started(name), self._start_failed)

    def _started(self, name: str) -> None:
        if isValid(self) and self._tools.status(name) == "running":  # else the problem is shown already
            self.server_note.setText(f"{name} is running.")
            self.server_note.setStyleSheet("")

    def _start_failed(self, problem: str) -> None:
        if isValid(self):
            self.server_note.setText(problem)
            self.server_note.setStyleSheet(ERROR_STYLE)
