"""The two questions tools ask the person: may this call run, and may this server start.

Both dialogs are opened with ``open()`` (window-modal, never ``exec()``): the GUI thread goes on
while they wait. Escape or closing the window is the cautious answer (*Deny*, *Don't start*).
No button is the default, so an Enter typed for the composer cannot allow anything.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from desktop.ui.chat.tool_block import pretty_json

ONCE, ALWAYS, DENY = "once", "always", "deny"


def _code_view(text: str, lines: int) -> QPlainTextEdit:
    """Read-only, selectable monospace text, ``lines`` tall at most before it scrolls."""
    view = QPlainTextEdit(text)
    view.setReadOnly(True)
    view.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                 | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    shown = max(2, min(lines, text.count("\n") + 1))
    view.setFixedHeight(shown * view.fontMetrics().lineSpacing() + 16)
    return view


def _button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    button.setAutoDefault(False)  # Enter answers nothing: the person picks
    return button


def _label(html: str) -> QLabel:
    label = QLabel(html)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


class _Question(QDialog):
    """A dialog that gives one answer: the first of a button, Escape or closing; ``dismiss``
    closes it without one (the answer it asked about ended)."""

    def __init__(self, title: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(480)
        self._answered = False

    def _answer(self, value: Any) -> None:
        raise NotImplementedError

    def give(self, value: Any) -> None:
        """Answer ``value`` (once) and close."""
        if not self._answered:
            self._answered = True
            self._answer(value)
        self.done(QDialog.DialogCode.Accepted)

    def reject(self) -> None:
        """Escape or the window's close button: the cautious answer."""
        if not self._answered:
            self._answered = True
            self._answer(self._cautious())
        super().reject()

    def _cautious(self) -> Any:
        raise NotImplementedError

    def dismiss(self) -> None:
        """Close without answering."""
        self._answered = True
        super().reject()


class ToolApprovalDialog(_Question):
    """May the model's call run? ``request``: ``server``, ``name``, ``arguments`` (ToolTurn's
    approval_needed). Signals: decided(str) 'once', 'always' or 'deny'."""

    decided = Signal(str)

    def __init__(self, request: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__("Allow a tool call?", parent)
        self.request = dict(request)
        name, server = str(request.get("name") or "?"), str(request.get("server") or "?")
        self.heading = _label(f"<b>The model wants to call <code>{escape(name)}</code></b> "
                              f"on MCP server “{escape(server)}”.")
        self.arguments = _code_view(pretty_json(request.get("arguments") or {}), 14)
        self.arguments.setObjectName("approvalArguments")
        note = _label("<span style='color: palette(placeholder-text);'>Nothing runs until you choose. The result "
                      "goes to the model, in this conversation only.</span>")
        self.allow_once = _button("Allow once", "allowOnce", "Run this call now; ask again next time")
        self.allow_always = _button("Always allow this tool", "allowAlways",
                                    f"Run {name} without asking from now on (Settings → Tools lists it)")
        self.deny = _button("Deny", "deny", "Do not run it; the model is told you declined (Esc)")
        self.allow_once.clicked.connect(lambda: self.give(ONCE))
        self.allow_always.clicked.connect(lambda: self.give(ALWAYS))
        self.deny.clicked.connect(lambda: self.give(DENY))
        buttons = QHBoxLayout()
        buttons.addWidget(self.deny)
        buttons.addStretch(1)
        buttons.addWidget(self.allow_always)
        buttons.addWidget(self.allow_once)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(QLabel("Arguments:"))
        layout.addWidget(self.arguments)
        layout.addWidget(note)
        layout.addLayout(buttons)
        self.deny.setFocus()  # Space answers the cautious way; Tab reaches the others

    def _answer(self, value: Any) -> None:
        self.decided.emit(str(value))

    def _cautious(self) -> Any:
        return DENY


class ServerStartDialog(_Question):
    """May Cove start this MCP server's program? Signals: decided(bool)."""

    decided = Signal(bool)

    def __init__(self, server: str, command_line: str, parent: QWidget | None = None) -> None:
        super().__init__("Start an MCP server?", parent)
        self.server, self.command_line = server, command_line
        self.heading = _label(f"<b>Start MCP server “{escape(server)}”?</b>")
        explain = _label("Cove will run this command on your computer, as you. It can do whatever your "
                         "account can: start only programs you trust.")
        self.command = _code_view(command_line, 8)
        self.command.setObjectName("startCommand")
        note = _label("<span style='color: palette(placeholder-text);'>Your answer is remembered for this exact "
                      "command; if mcp.json changes it, Cove asks again.</span>")
        self.start = _button("Start", "startServer", "Run the command and use the server's tools")
        self.dont_start = _button("Don't start", "dontStart", "Leave it stopped (Esc)")
        self.start.clicked.connect(lambda: self.give(True))
        self.dont_start.clicked.connect(lambda: self.give(False))
        buttons = QHBoxLayout()
        buttons.addWidget(self.dont_start)
        buttons.addStretch(1)
        buttons.addWidget(self.start)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(explain)
        layout.addWidget(self.command)
        layout.addWidget(note)
        layout.addLayout(buttons)
        self.dont_start.setFocus()

    def _answer(self, value: Any) -> None:
        self.decided.emit(bool(value))

    def _cautious(self) -> Any:
        return False
