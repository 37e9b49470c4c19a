"""One tool call and its result, inside an answer: a one-line header that unfolds.

Folded, the block is one quiet line: "🔧 get_weather · ok · 0.12 s" (an error or a denied call is
coloured so it stands out). A click unfolds the call's arguments (pretty JSON) and its result,
both monospace and selectable; a long result scrolls inside the block and a very long one is cut.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFrame, QLabel, QPlainTextEdit, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from desktop.core.tools.specs import DENIED, ERROR, OK
from desktop.ui.theme import system_is_dark

MAX_RESULT_CHARS = 20_000   # shown in the block; the model got all of it
MAX_VISIBLE_LINES = 14      # taller text scrolls inside the block
STATUS_WORDS = {OK: "ok", ERROR: "error", DENIED: "denied"}


@cache
def tool_icon() -> str:
    """🔧 where an emoji font can draw it, else ⚙ (in nearly every font)."""
    return "🔧" if any("emoji" in family.lower() for family in QFontDatabase.families()) else "⚙"


def pretty_json(value: Any) -> str:
    """Arguments as indented JSON (the text as it is when it is not JSON data)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return str(value)


def status_colour(status: str) -> str:
    """The header's text colour for a call's status (the palette's own for ok)."""
    dark = system_is_dark()
    if status == ERROR:
        return "#ff7b72" if dark else "#b3261e"
    if status == DENIED:
        return "#d29922" if dark else "#8a5a00"
    return "palette(placeholder-text)"


def header_text(tool: dict[str, Any]) -> str:
    """"🔧 get_weather · ok · 0.12 s" for a tool message's facts."""
    name = str(tool.get("name") or "tool")
    status = str(tool.get("status") or OK)
    parts = [f"{tool_icon()} {name}", STATUS_WORDS.get(status, status)]
    seconds = float(tool.get("duration_s") or 0.0)
    if status != DENIED:
        parts.append(f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s")
    return " · ".join(parts)


class _Code(QPlainTextEdit):
    """Read-only monospace text, as tall as its lines up to MAX_VISIBLE_LINES, then it scrolls."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet("QPlainTextEdit { background: palette(alternate-base); border-radius: 4px; }")
        self.setPlainText(text)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit()

    def _fit(self, *_args: object) -> None:
        lines = max(1, min(MAX_VISIBLE_LINES, int(self.document().documentLayout().documentSize().height())))
        self.setFixedHeight(lines * self.fontMetrics().lineSpacing() + 14)


class ToolBlock(QFrame):
    """Shows one tool message (``tool``: its facts, ``result``: its content); folded at first."""

    def __init__(self, tool: dict[str, Any], result: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolBlock")
        self.tool = dict(tool)
        self.status = str(tool.get("status") or OK)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 2)
        layout.setSpacing(2)
        self.toggle = QToolButton(self)
        self.toggle.setObjectName("toolToggle")
        self.toggle.setAutoRaise(True)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setText(header_text(tool))
        self.toggle.setToolTip(self._tooltip())
        self.toggle.setStyleSheet(f"QToolButton {{ color: {status_colour(self.status)}; font-size: small; }}"
                                  " QToolButton:checked { background: transparent; border: none; }")
        self.toggle.toggled.connect(self.set_expanded)
        layout.addWidget(self.toggle)
        self.details = QWidget(self)
        self.details.setObjectName("toolDetails")
        details = QVBoxLayout(self.details)
        details.setContentsMargins(18, 0, 0, 4)
        details.setSpacing(2)
        self.arguments = _Code(pretty_json(tool.get("arguments") or {}), self.details)
        self.arguments.setObjectName("toolArguments")
        self.result = _Code(_shown_result(result), self.details)
        self.result.setObjectName("toolResult")
        for title, view in (("Arguments", self.arguments), (self._result_title(), self.result)):
            label = QLabel(title, self.details)
            label.setStyleSheet("color: palette(placeholder-text); font-size: small; font-weight: 600;")
            details.addWidget(label)
            details.addWidget(view)
        layout.addWidget(self.details)
        self.set_expanded(False)

    @property
    def expanded(self) -> bool:
        """True while the arguments and the result are shown."""
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        """Unfold (True) or fold the details."""
        if self.toggle.isChecked() != expanded:
            self.toggle.setChecked(expanded)  # comes back here through toggled
            return
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.details.setVisible(expanded)

    def header(self) -> str:
        """The folded line's text."""
        return self.toggle.text()

    def _result_title(self) -> str:
        if self.status == DENIED:
            return "Result (you denied this call; the model was told)"
        if self.status == ERROR:
            return "Result (an error, given to the model)"
        return "Result"

    def _tooltip(self) -> str:
        server = self.tool.get("server")
        where = f" on MCP server '{server}'" if server else ""
        return f"Tool call {self.tool.get('name') or ''}{where}. Click to show its arguments and result."


def _shown_result(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n… ({len(text) - MAX_RESULT_CHARS:,} more characters not shown)"
