"""A thinking model's reasoning above its answer: live while it thinks, then folded away.

The header says "Thinking… 4 s" while the model thinks and "Thought for 12 s" after; a click
unfolds or folds the reasoning. The text is quieter than the answer (smaller, dimmed, a rule at
its left) and plain: only its new tail is appended while it streams, so a long reasoning costs no
more to show than a short one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFrame, QPlainTextEdit, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from desktop.core.conversations.export_import import thought_label


class ThinkingBlock(QFrame):
    """Shows one answer's reasoning. ``expanded`` tells whether the text is unfolded."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thinking")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 4)
        layout.setSpacing(2)
        self.toggle = QToolButton(self)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setCheckable(True)
        self.toggle.setStyleSheet("QToolButton { color: palette(placeholder-text); font-size: small; }")
        self.toggle.toggled.connect(self._set_expanded)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setFrameShape(QFrame.Shape.NoFrame)
        self.text.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.text.setStyleSheet("QPlainTextEdit { background: transparent; color: palette(placeholder-text);"
                                " font-size: small; border-left: 2px solid palette(mid); padding-left: 6px; }")
        self.text.document().documentLayout().documentSizeChanged.connect(self._fit)
        layout.addWidget(self.toggle)
        layout.addWidget(self.text)
        self._shown = ""
        self._thinking = False
        self.hide()

    @property
    def expanded(self) -> bool:
        """True while the reasoning is unfolded."""
        return self.toggle.isChecked()

    @property
    def reasoning(self) -> str:
        """The reasoning shown."""
        return self._shown

    def show_reasoning(self, text: str, seconds: float, thinking: bool) -> None:
        """Show ``text``: unfolded and growing while ``thinking``, folded once the answer starts."""
        if not text.strip():
            return
        self.show()
        if text.startswith(self._shown):
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(text[len(self._shown):])
        else:
            self.text.setPlainText(text)
        self._shown = text
        was_thinking, self._thinking = self._thinking, thinking
        self.toggle.setText(f"Thinking… {seconds:.0f} s" if thinking else thought_label(seconds))
        if thinking and not was_thinking:
            self.toggle.setChecked(True)
        elif was_thinking and not thinking:
            self.toggle.setChecked(False)  # the answer began: fold the thinking away
        self._set_expanded(self.toggle.isChecked())

    def _set_expanded(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.text.setVisible(expanded)

    def _fit(self, *_args: object) -> None:
        lines = self.text.document().documentLayout().documentSize().height()
        height = int(lines * self.text.fontMetrics().lineSpacing()) + 10
        self.text.setFixedHeight(height)
