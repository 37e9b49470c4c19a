"""The conversation list: search, new, open, pin, rename, delete (with confirmation and undo),
grouped by date."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.conversations.records import Conversation
from desktop.core.conversations.search import MATCH_END, MATCH_START

GROUPS = ("Pinned", "Today", "Yesterday", "Previous 7 days", "Previous 30 days", "Older")


def date_group(conversation: Conversation, now: float | None = None) -> str:
    """The heading a conversation is listed under."""
    if conversation.pinned:
        return "Pinned"
    today = time.localtime(now if now is not None else time.time())
    midnight = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, 0, 0, 0, 0, 0, -1))
    age = midnight - conversation.updated_at
    if age <= 0:
        return "Today"
    if age <= 86400:
        return "Yesterday"
    if age <= 7 * 86400:
        return "Previous 7 days"
    return "Previous 30 days" if age <= 30 * 86400 else "Older"


def snippet_html(snippet: str) -> str:
    """A search snippet with its matches highlighted (the store marks them with \x02..\x03)."""
    escaped = html.escape(snippet)
    return (escaped.replace(MATCH_START, "<span style='background:#ffd54f; color:black;'><b>")
            .replace(MATCH_END, "</b></span>"))


class Sidebar(QWidget):
    """Signals: new_requested(), open_requested(int), rename_requested(int, str), delete_requested(int),
    pin_requested(int, bool), search_requested(str), hit_requested(int conversation, int message),
    export_requested(int conversation, 0 for all), import_requested()."""

    new_requested = Signal()
    open_requested = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    pin_requested = Signal(int, bool)
    search_requested = Signal(str)
    hit_requested = Signal(int, int)
    export_requested = Signal(int)
    import_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        self.more_button = QToolButton()
        self.more_button.setText("⋯")
        self.more_button.setToolTip("Export or import conversations")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        more = QMenu(self.more_button)
        self.export_all_action = more.addAction("Export all conversations…", lambda: self.export_requested.emit(0))
        self.import_action = more.addAction("Import conversations (Cove JSON or ChatGPT export)…",
                                            self.import_requested.emit)
        self.more_button.setMenu(more)
        self.list = QListWidget()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search all conversations (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(lambda: self.search_requested.emit(self.search_box.text()))
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_thinking = QCheckBox("Search thinking too")
        self.search_thinking.setToolTip("Also find words in what thinking models thought before answering")
        self.search_thinking.toggled.connect(lambda _on: self._search_timer.start())
        self.results = QListWidget()
        self.results.setWordWrap(True)
        self.results.itemClicked.connect(self._hit_clicked)
        self.results.itemActivated.connect(self._hit_clicked)
        self.results.hide()
        self.no_results = QLabel("No messages match.")
        self.no_results.hide()
        layout.addWidget(self.search_box)
        layout.addWidget(self.search_thinking)
        top = QHBoxLayout()
        top.addWidget(self.new_button, 1)
        top.addWidget(self.more_button)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.no_results)
        self._pinned: dict[int, bool] = {}
        rename = QAction("Rename", self.list, shortcut=QKeySequence(Qt.Key.Key_F2))
        rename.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        rename.triggered.connect(lambda: self.ask_rename(self.current_id()))
        delete = QAction("Delete", self.list, shortcut=QKeySequence(QKeySequence.StandardKey.Delete))
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda: self.ask_delete(self.current_id()))
        self.list.addActions([rename, delete])
        self.confirm_box: QMessageBox | None = None
        self.rename_dialog: QInputDialog | None = None

    def set_conversations(self, conversations: list[Conversation], current_id: int) -> None:
        """Show the list, keeping ``current_id`` selected."""
        self.list.blockSignals(True)
        self.list.clear()
        self._pinned = {c.id: c.pinned for c in conversations}
        group = ""
        for conversation in conversations:
            heading = date_group(conversation)
            if heading != group:
                group = heading
                header = QListWidgetItem(heading)
                header.setFlags(Qt.ItemFlag.NoItemFlags)
                font = header.font()
                font.setBold(True)
                font.setPointSizeF(font.pointSizeF() * 0.85)
                header.setFont(font)
                self.list.addItem(header)
            item = QListWidgetItem(("📌 " if conversation.pinned else "") + conversation.title)
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.title)
            self.list.addItem(item)
            if conversation.id == current_id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def show_results(self, query: str, hits: list) -> None:
        """Show search hits (or the conversation list again when the query is empty)."""
        if query != self.search_box.text():
            return  # an older query's answer
        searching = bool(query.strip())
        self.list.setVisible(not searching)
        self.new_button.setVisible(not searching)
        self.results.setVisible(searching and bool(hits))
        self.no_results.setVisible(searching and not hits)
        self.results.clear()
        for hit in hits:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, (hit.conversation_id, hit.message_id))
            label = QLabel(f"<b>{html.escape(hit.conversation_title)}</b><br>"
                           f"<span style='color:gray;'>{'You' if hit.role == 'user' else 'Assistant'}"
                           f"{' (thinking)' if hit.in_thinking else ''}:</span> "
                           f"{snippet_html(hit.snippet)}")
            label.setWordWrap(True)
            label.setContentsMargins(4, 4, 4, 4)
            item.setSizeHint(label.sizeHint().expandedTo(label.minimumSizeHint()) + QSize(0, 12))
            self.results.addItem(item)
            self.results.setItemWidget(item, label)

    def _hit_clicked(self, item: QListWidgetItem) -> None:
        conversation_id, message_id = item.data(Qt.ItemDataRole.UserRole)
        self.hit_requested.emit(conversation_id, message_id)

    def select(self, conversation_id: int) -> None:
        """Highlight a conversation without opening it again."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentItem(item)
                return
        self.list.clearSelection()

    def current_id(self) -> int:
        """The selected conversation's id, 0 for none."""
        item = self.list.currentItem()
        data = item.data(Qt.ItemDataRole.UserRole) if item else None
        return int(data) if data is not None else 0

    def select_title(self, title: str) -> None:
        """Make the conversation with this title the current one (headings are skipped)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) is not None and item.text().removeprefix("📌 ") == title:
                self.list.setCurrentItem(item)
                return

    def titles(self) -> list[str]:
        """The conversation titles shown, top to bottom (without the date headings)."""
        return [self.list.item(i).text().removeprefix("📌 ") for i in range(self.list.count())
                if self.list.item(i).data(Qt.ItemDataRole.UserRole) is not None]

    def headings(self) -> list[str]:
        """The date headings shown."""
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).data(Qt.ItemDataRole.UserRole) is None]

    def _clicked(self, item: QListWidgetItem) -> None:
        if item.data(Qt.ItemDataRole.UserRole) is not None:
            self.open_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        item = self.list.itemAt(pos)
        if item is None or item.data(Qt.ItemDataRole.UserRole) is None:
            return
        cid = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        pinned = self._pinned.get(cid, False)
        menu.addAction("Unpin" if pinned else "Pin to top", lambda: self.pin_requested.emit(cid, not pinned))
        menu.addAction("Rename…", lambda: self.ask_rename(cid))
        menu.addAction("Export…", lambda: self.export_requested.emit(cid))
        menu.addAction("Delete…", lambda: self.ask_delete(cid))
        menu.exec(self.list.mapToGlobal(pos))

    def _title_of(self, cid: int) -> str:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == cid:
                return self.list.item(row).text().removeprefix("📌 ")
        return ""

    def ask_rename(self, cid: int) -> None:
        """Ask for a new title (window-modal, not blocking the event loop)."""
        if not cid:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename conversation")
        dialog.setLabelText("Title:")
        dialog.setTextValue(self._title_of(cid))
        dialog.textValueSelected.connect(lambda text: self.rename_requested.emit(cid, text))
        self.rename_dialog = dialog
        dialog.open()

    def ask_delete(self, cid: int) -> None:
        """Ask for confirmation before deleting a conversation."""
        if not cid:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete conversation",
                          f"Delete “{self._title_of(cid)}” and all its messages?",
                          QMessageBox.StandardButton.Cancel, self)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r: box.clickedButton() is delete and self.delete_requested.emit(cid))
        self.confirm_box = box
        box.open()
