"""The conversation list: new, open, rename, delete (with confirmation)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QInputDialog, QListWidget, QListWidgetItem, QMenu, QMessageBox, QPushButton,
                               QVBoxLayout, QWidget)

from desktop.core.store import Conversation


class Sidebar(QWidget):
    """Signals: new_requested(), open_requested(int), rename_requested(int, str), delete_requested(int)."""

    new_requested = Signal()
    open_requested = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        self.list = QListWidget()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemClicked.connect(self._clicked)
        self.list.itemActivated.connect(self._clicked)
        layout.addWidget(self.new_button)
        layout.addWidget(self.list, 1)
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
        for conversation in conversations:
            item = QListWidgetItem(conversation.title)
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.title)
            self.list.addItem(item)
            if conversation.id == current_id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

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
        return int(item.data(Qt.ItemDataRole.UserRole)) if item else 0

    def titles(self) -> list[str]:
        """The titles shown, top to bottom."""
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _clicked(self, item: QListWidgetItem) -> None:
        self.open_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        item = self.list.itemAt(pos)
        if item is None:
            return
        cid = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.ask_rename(cid))
        menu.addAction("Delete…", lambda: self.ask_delete(cid))
        menu.exec(self.list.mapToGlobal(pos))

    def _title_of(self, cid: int) -> str:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == cid:
                return self.list.item(row).text()
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
                          f"Delete “{self._title_of(cid)}” and all its messages? This cannot be undone.",
                          QMessageBox.StandardButton.Cancel, self)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r: box.clickedButton() is delete and self.delete_requested.emit(cid))
        self.confirm_box = box
        box.open()
