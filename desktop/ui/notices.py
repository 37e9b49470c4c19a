"""Notices in the main window: the red banner above the chat, and the Undo offer after a delete."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

UNDO_WINDOW_MS = 15_000  # how long Undo is offered after the last delete


class Banner(QWidget):
    """A selectable message with a ✕ that dismisses it; hidden until :meth:`show_message`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setStyleSheet("QLabel { background: #b3261e; color: white; padding: 8px; border-radius: 4px; }")
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.close_button)
        self.hide()

    def show_message(self, message: str) -> None:
        """Show ``message`` (replacing the one shown)."""
        self.label.setText(message)
        self.show()


class UndoOffer(QWidget):
    """“Deleted “title”. [Undo]”, for :data:`UNDO_WINDOW_MS` after the last delete.

    Signals: undo_requested(int conversation id) when the person presses Undo in time."""

    undo_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.button = QPushButton("Undo")
        self.button.clicked.connect(self._undo)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.button)
        self._conversation_id = 0
        self._timer = QTimer(self, singleShot=True, interval=UNDO_WINDOW_MS)
        self._timer.timeout.connect(self._expire)
        self.hide()

    def offer(self, conversation_id: int, title: str) -> None:
        """Offer to bring back the conversation just deleted (replacing an earlier offer)."""
        self._conversation_id = conversation_id
        self.label.setText(f"Deleted “{title}”.")
        self.show()
        self._timer.start()

    def _expire(self) -> None:
        self._conversation_id = 0
        self.hide()

    def _undo(self) -> None:
        conversation_id, self._conversation_id = self._conversation_id, 0
        self.hide()
        if conversation_id:
            self.undo_requested.emit(conversation_id)
