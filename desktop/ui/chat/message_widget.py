"""One message in the chat view: who wrote it, its rendered Markdown, and its state."""

from __future__ import annotations

import contextlib
import dataclasses
from html import escape

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QTextBrowser, QToolButton, QVBoxLayout, QWidget

from desktop.core.conversations.records import COMPLETE, FAILED, STOPPED, STREAMING, Message
from desktop.core.text.markdown import MarkdownRenderer, split_blocks
from desktop.ui.chat.thinking_block import ThinkingBlock
from desktop.ui.chat.tool_block import ToolBlock

ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}


class AutoHeightBrowser(QTextBrowser):
    """A read-only rich-text view as tall as its content (the chat view scrolls, not it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def _fit(self, *_args: object) -> None:
        self.setFixedHeight(int(self.document().size().height()) + 4)

    def resizeEvent(self, event) -> None:  # noqa: ANN001 - Qt override
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()


class MessageWidget(QFrame):
    """Shows one message. Signals: copied(str) when something was copied; version_step(int message
    id, int step) for the ‹ › version buttons; edit_requested(int message id) for Edit."""

    copied = Signal(str)
    version_step = Signal(int, int)
    edit_requested = Signal(int)

    def __init__(self, message: Message, renderer: MarkdownRenderer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self._renderer = renderer
        self._code_blocks: list[str] = []
        self._text = message.content
        self.setObjectName("message-" + message.role)
        if message.role == "user":
            self.setStyleSheet("QFrame#message-user { background: palette(alternate-base); border-radius: 8px; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        self.header = QLabel(ROLE_NAMES.get(message.role, message.role))
        self.header.setStyleSheet("font-weight: 600;")
        self.body = AutoHeightBrowser(self)
        self.body.anchorClicked.connect(self._on_link)
        self._stream_views: list[AutoHeightBrowser] = []  # one per Markdown block while streaming
        self._stream_blocks: list[str] = []
        self._stream_codes: list[list[str]] = []
        self.state = QLabel()
        self.state.setStyleSheet("color: palette(placeholder-text); font-size: small;")
        self._layout = layout
        layout.addLayout(self._build_header_row(message))
        self.thinking = ThinkingBlock(self)
        layout.addWidget(self.thinking)
        layout.addWidget(self.body)
        layout.addWidget(self.state)
        self.thinking.show_reasoning(message.reasoning, message.thinking_s, False)
        self.set_text(message.content)
        self.set_status(message.status)
        self._shape_for_tools()

    def _shape_for_tools(self) -> None:
        """A tool message is its folded :class:`ToolBlock`, nothing else; an answer that only
        called tools is one line."""
        self.tool_block: ToolBlock | None = None
        if self.message.role == "tool":
            self._layout.setContentsMargins(12, 0, 12, 0)
            for widget in (self.header, self.copy_button, self.body, self.state, self.thinking):
                widget.hide()
            self.tool_block = ToolBlock(self.message.tool or {"name": "tool"}, self.message.content, self)
            self._layout.insertWidget(0, self.tool_block)
        self.set_tool_calls(self.message.tool_calls)

    def set_tool_calls(self, calls: list[dict]) -> None:
        """The tools this answer called (from its end): an answer with no text of its own shows
        only "Calling get_weather…" beside its header."""
        self.message = dataclasses.replace(self.message, tool_calls=list(calls))
        names = ", ".join(dict.fromkeys(str(call.get("name") or "a tool") for call in calls))
        only_calls = bool(calls) and self.message.role == "assistant" and not self._text.strip()
        self.call_line.setText(f"Calling {names}…" if names else "")
        self.call_line.setVisible(only_calls)
        if only_calls:
            self.body.hide()
            self.copy_button.hide()
            self.set_status(self.status)

    def _build_header_row(self, message: Message) -> QHBoxLayout:
        """Who wrote it, and the Copy, Edit and version buttons."""
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the message as Markdown (an answer without its thinking)")
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(self.copy_message)
        self.previous_version = QToolButton()
        self.previous_version.setText("‹")
        self.previous_version.setToolTip("Previous version")
        self.previous_version.setAutoRaise(True)
        self.next_version = QToolButton()
        self.next_version.setText("›")
        self.next_version.setToolTip("Next version")
        self.next_version.setAutoRaise(True)
        self.version_label = QLabel()
        self.previous_version.clicked.connect(lambda: self.version_step.emit(self.message.id, -1))
        self.next_version.clicked.connect(lambda: self.version_step.emit(self.message.id, 1))
        self.edit_button = QToolButton()
        self.edit_button.setText("Edit")
        self.edit_button.setToolTip("Ask again with an edited question (the original stays as a version)")
        self.edit_button.setAutoRaise(True)
        self.edit_button.setVisible(message.role == "user")
        self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self.message.id))
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.header)
        header_row.addStretch(1)
        for widget in (self.previous_version, self.version_label, self.next_version, self.edit_button,
                       self.copy_button):
            header_row.addWidget(widget)
        self.call_line = QLabel()
        self.call_line.setObjectName("toolCallLine")
        self.call_line.setStyleSheet("color: palette(placeholder-text); font-size: small; margin-left: 6px;")
        self.call_line.hide()
        header_row.insertWidget(1, self.call_line)
        self.set_versions(0, 1)
        return header_row

    @property
    def text(self) -> str:
        """The message's current text."""
        return self._text

    def shown_text(self) -> str:
        """The text as displayed (rendered, without Markdown syntax)."""
        if self._stream_views:
            return "\n".join(view.toPlainText() for view in self._stream_views)
        return self.body.toPlainText()

    def set_text(self, text: str) -> None:
        """Render ``text`` (the whole message) in one view, selectable as a whole."""
        self._text = text
        self._drop_stream_views()
        if self.message.role == "tool":  # shown by its ToolBlock, never as Markdown
            self.body.hide()
            return
        if self.message.role == "user":
            self.body.setHtml("<p style='white-space: pre-wrap;'>" + escape(text) + "</p>")
            self._code_blocks = []
            return
        rendered = self._renderer.render(text)
        self._code_blocks = rendered.code_blocks
        self.body.setHtml(rendered.html)

    def stream_text(self, text: str) -> None:
        """Show a growing answer: blocks that are complete are rendered once, only the last
        block is rendered again, so the cost of a repaint does not grow with the answer."""
        self._text = text
        blocks = split_blocks(text)
        if not self._stream_views:
            self.body.hide()
        offset = 0
        for i, block in enumerate(blocks):
            if i == len(self._stream_views):
                view = AutoHeightBrowser(self)
                view.anchorClicked.connect(self._on_link)
                self._layout.insertWidget(self._layout.indexOf(self.state), view)
                self._stream_views.append(view)
                self._stream_blocks.append("")
                self._stream_codes.append([])
            if self._stream_blocks[i] != block:
                rendered = self._renderer.render(block, first_code_index=offset)
                self._stream_views[i].setHtml(rendered.html)
                self._stream_blocks[i] = block
                self._stream_codes[i] = rendered.code_blocks
            offset += len(self._stream_codes[i])
        while len(self._stream_views) > len(blocks):
            self._stream_views.pop().deleteLater()
            self._stream_blocks.pop()
            self._stream_codes.pop()
        self._code_blocks = [code for codes in self._stream_codes for code in codes]

    def _drop_stream_views(self) -> None:
        for view in self._stream_views:
            view.setParent(None)
            view.deleteLater()
        self._stream_views, self._stream_blocks, self._stream_codes = [], [], []
        self.body.show()

    def set_renderer(self, renderer: MarkdownRenderer) -> None:
        """Re-render with another theme."""
        self._renderer = renderer
        self.set_text(self._text)
        self.set_tool_calls(self.message.tool_calls)

    def show_reasoning(self, text: str, seconds: float, thinking: bool) -> None:
        """Show a thinking model's reasoning above the answer (live while ``thinking``)."""
        self.thinking.show_reasoning(text, seconds, thinking)
        if self.status == STREAMING and self.state.text() in ("Writing…", "Thinking…"):
            self.set_status(STREAMING)  # "Thinking…" until the answer starts

    def set_status(self, status: str, detail: str = "") -> None:
        """Show the answer's state under it (nothing for a complete message). An answer that is
        all thinking says so."""
        only_thinking = bool(self.thinking.reasoning.strip()) and not self._text.strip() and not self.message.tool_calls
        labels = {
            STREAMING: "Thinking…" if only_thinking else "Writing…",
            STOPPED: "Stopped while thinking — there is no answer yet" if only_thinking
            else "Stopped — the answer is incomplete",
            FAILED: "Failed" + (f": {detail}" if detail else ""),
            COMPLETE: "The model only thought and gave no answer" if only_thinking else detail,
        }
        self.status = status
        self.state.setText(labels.get(status, status))
        self.state.setVisible(bool(self.state.text()))

    def mark_interrupted(self) -> None:
        """A stored answer left 'streaming' by a crash: say it is incomplete."""
        self.status = STREAMING
        self.state.setText("Incomplete — Cove closed while this answer was being written")
        self.state.setVisible(True)

    def set_versions(self, index: int, count: int) -> None:
        """Show ``‹ index+1/count ›`` when the message has other versions."""
        several = count > 1
        for widget in (self.previous_version, self.version_label, self.next_version):
            widget.setVisible(several)
        self.version_label.setText(f"{index + 1}/{count}")
        self.previous_version.setEnabled(index > 0)
        self.next_version.setEnabled(index < count - 1)

    def version_text(self) -> str:
        """The ``2/3`` shown, or an empty string."""
        return self.version_label.text() if not self.version_label.isHidden() else ""

    def copy_message(self) -> None:
        """Copy the whole message (its Markdown source) to the clipboard."""
        QGuiApplication.clipboard().setText(self._text)
        self.copied.emit(self._text)

    def copy_code(self, index: int) -> None:
        """Copy code block ``index`` to the clipboard."""
        if 0 <= index < len(self._code_blocks):
            QGuiApplication.clipboard().setText(self._code_blocks[index])
            self.copied.emit(self._code_blocks[index])

    def _on_link(self, url: QUrl) -> None:
        if url.scheme() == "copy":
            with contextlib.suppress(ValueError):  # a malformed copy: link copies nothing
                self.copy_code(int(url.path() or url.toString().split(":", 1)[1]))
        elif url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)  # the person clicked a link: their choice to go online
