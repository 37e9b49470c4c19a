"""The scrolling list of messages of the open conversation."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget
from shiboken6 import isValid

from desktop.core.conversations.records import STREAMING, Message
from desktop.core.text.markdown import MarkdownRenderer
from desktop.ui.chat.message_widget import MessageWidget
from desktop.ui.chat.tool_block import ToolBlock

WINDOW = 10  # messages built as widgets when a conversation opens (about a screenful)
BATCH = 10   # more built each time the person scrolls past them

EMPTY_HINT = ("<h2>Start a conversation</h2><p>Ask anything. Everything you type stays on this computer."
              "</p><p style='color: gray;'>Enter sends · Shift+Enter adds a line · "
              "Models… (Ctrl+Shift+M) downloads other models</p>")


CONTEXT_MARKER = ("Messages above this line no longer fit in the model's context window: "
                  "the model does not see them when it answers.")


class ChatView(QScrollArea):
    """Signals: copied(str); version_step(int, int) and edit_requested(int) from the messages."""

    copied = Signal(str)
    version_step = Signal(int, int)
    edit_requested = Signal(int)

    def __init__(self, renderer: MarkdownRenderer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._renderer = renderer
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._container = QWidget()
        self._container.setAutoFillBackground(True)
        self._container.setBackgroundRole(QPalette.ColorRole.Base)
        self._layout = QVBoxLayout(self._container)
        self._layout.setContentsMargins(16, 12, 16, 12)
        self._layout.setSpacing(6)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self._layout.addWidget(self.empty_hint)
        self._layout.addStretch(1)
        self.setWidget(self._container)
        self._widgets: dict[int, MessageWidget] = {}
        self._order: list[MessageWidget] = []
        self._stick_to_bottom = True
        self.context_marker = QLabel("⤒  " + CONTEXT_MARKER)
        self.context_marker.setWordWrap(True)
        self.context_marker.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.context_marker.setStyleSheet("color: palette(placeholder-text); border-top: 1px dashed gray;"
                                          " padding: 4px; font-size: small;")
        self.context_marker.hide()
        self.earlier_button = QPushButton()
        self.earlier_button.setFlat(True)
        self.earlier_button.clicked.connect(self.show_earlier)
        self.later_button = QPushButton()
        self.later_button.setFlat(True)
        self.later_button.clicked.connect(self.show_later)
        self._layout.insertWidget(1, self.earlier_button)
        self._layout.insertWidget(2, self.later_button)
        self.earlier_button.hide()
        self.later_button.hide()
        self._messages: list[Message] = []
        self._versions: dict[int, list[int]] = {}
        self._lo = self._hi = 0
        self._streaming_id = 0
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # -- content ----------------------------------------------------------------------------
    def message_widgets(self) -> list[MessageWidget]:
        """The message widgets, top to bottom."""
        return list(self._order)

    def widget_for(self, message_id: int) -> MessageWidget | None:
        """The widget showing ``message_id``."""
        return self._widgets.get(message_id)

    def set_messages(self, messages: list[Message], streaming_id: int = 0, focus_id: int = 0) -> None:
        """Show these messages, replacing what was shown. Only about a screenful is built as
        widgets (the end, or around ``focus_id``); more are built as the person scrolls."""
        self.mark_context_start(0)
        for widget in self._order:
            widget.setParent(None)
            widget.deleteLater()
        self._widgets.clear()
        self._order.clear()
        self._messages = list(messages)
        self._streaming_id = streaming_id
        ids = [m.id for m in messages]
        if focus_id in ids:
            at = ids.index(focus_id)
            self._lo, self._hi = max(0, at - 3), min(len(ids), at + WINDOW - 3)
        else:
            self._lo, self._hi = max(0, len(ids) - WINDOW), len(ids)
        for message in self._messages[self._lo:self._hi]:
            self._build(message, len(self._order))
        self._stick_to_bottom = not focus_id
        self._update_buttons()
        self._update_hint()

    def total_messages(self) -> int:
        """Messages in the conversation shown, built as widgets or not."""
        return len(self._messages)

    def _build(self, message: Message, position: int) -> MessageWidget:
        widget = MessageWidget(message, self._renderer, self._container)
        widget.copied.connect(self.copied)
        widget.version_step.connect(self.version_step)
        widget.edit_requested.connect(self.edit_requested)
        anchor = self._order[position] if position < len(self._order) else self.later_button
        self._layout.insertWidget(self._layout.indexOf(anchor), widget)
        self._widgets[message.id] = widget
        self._order.insert(position, widget)
        if message.status == STREAMING and message.id != self._streaming_id:
            widget.mark_interrupted()
        self._apply_version(widget)
        return widget

    def show_earlier(self) -> None:
        """Build the next batch of older messages above, keeping what is on screen in place."""
        if self._lo == 0:
            return
        bar = self.verticalScrollBar()
        before_max, before_value = bar.maximum(), bar.value()
        new_lo = max(0, self._lo - BATCH)
        for offset, message in enumerate(self._messages[new_lo:self._lo]):
            self._build(message, offset)
        self._lo = new_lo
        self._update_buttons()
        self._container.adjustSize()
        QTimer.singleShot(0, self, lambda: bar.setValue(before_value + bar.maximum() - before_max))

    def show_later(self) -> None:
        """Build the next batch of newer messages below."""
        new_hi = min(len(self._messages), self._hi + BATCH)
        for message in self._messages[self._hi:new_hi]:
            self._build(message, len(self._order))
        self._hi = new_hi
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.earlier_button.setVisible(self._lo > 0)
        self.earlier_button.setText(f"Show {min(BATCH, self._lo)} earlier messages ({self._lo} in all)")
        self.later_button.setVisible(self._hi < len(self._messages))
        self.later_button.setText(f"Show later messages ({len(self._messages) - self._hi} more)")

    def add_message(self, message: Message) -> MessageWidget:
        """Append one message at the bottom (the view jumps to the end of the conversation): a
        question, an answer starting, or a tool call's result (role 'tool') between two rounds."""
        if self._hi < len(self._messages):
            self.set_messages(self._messages, self._streaming_id)
        if message.status == STREAMING:  # an answer starting now, not one a crash left unfinished
            self._streaming_id = message.id
        self._messages.append(message)
        self._hi = len(self._messages)
        widget = self._build(message, len(self._order))
        self._stick_to_bottom = True
        self._update_hint()
        return widget

    def update_text(self, message_id: int, text: str) -> None:
        """Show more of the message that is growing (only its last block is rendered again). The
        last update carries the whole answer; its blocks stay as streamed, since rendering a long
        answer again as one document would stall the GUI (65 ms at 13,000 characters)."""
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.stream_text(text)
        self._remember(message_id, content=text)

    def update_reasoning(self, message_id: int, text: str, seconds: float, thinking: bool) -> None:
        """Show more of a thinking model's reasoning (folded away once the answer starts)."""
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.show_reasoning(text, seconds, thinking)
        self._remember(message_id, reasoning=text, thinking_s=seconds)

    def finish_message(self, message_id: int, status: str, detail: str = "") -> None:
        """An answer ended: show its state under it."""
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.set_status(status, detail)
        self._remember(message_id, status=status)

    def set_tool_calls(self, message_id: int, calls: list[dict]) -> None:
        """An answer ended by calling tools: say which (kept for widgets built again)."""
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.set_tool_calls(calls)
        self._remember(message_id, tool_calls=list(calls))

    def tool_blocks(self) -> list[ToolBlock]:
        """The tool calls shown, top to bottom."""
        return [widget.tool_block for widget in self._order if widget.tool_block is not None]

    def _remember(self, message_id: int, **changes: object) -> None:
        """Keep the listed message in step with what streamed, so widgets built again (a scroll,
        a new message after scrolling up) show it as it is now."""
        for i in range(len(self._messages) - 1, -1, -1):
            if self._messages[i].id == message_id:
                self._messages[i] = dataclasses.replace(self._messages[i], **changes)
                return

    def apply_versions(self, versions: dict[int, list[int]]) -> None:
        """Show ``‹ n/m ›`` on messages that have several versions."""
        self._versions = versions
        for widget in self._order:
            self._apply_version(widget)

    def _apply_version(self, widget: MessageWidget) -> None:
        ids = self._versions.get(widget.message.id, [])
        widget.set_versions(ids.index(widget.message.id) if widget.message.id in ids else 0, max(1, len(ids)))

    def mark_context_start(self, dropped: int) -> None:
        """Put the context marker below the first ``dropped`` messages (0 hides it)."""
        self._layout.removeWidget(self.context_marker)
        self._dropped = dropped
        if dropped <= 0 or dropped >= len(self._messages) or dropped >= self._hi:
            self.context_marker.hide()
            return
        at = max(0, dropped - self._lo)
        index = self._layout.indexOf(self._order[at])
        self._layout.insertWidget(index, self.context_marker)
        self.context_marker.show()

    def scroll_to(self, message_id: int) -> None:
        """Bring a message into view and flash its frame."""
        widget = self._widgets.get(message_id)
        if widget is None:
            return
        self._stick_to_bottom = False
        original = widget.styleSheet()

        def show() -> None:
            if isValid(widget):
                self.ensureWidgetVisible(widget, 0, 40)

        def unflash() -> None:
            if isValid(widget):
                widget.setStyleSheet(original)

        QTimer.singleShot(0, self, show)
        QTimer.singleShot(120, self, show)  # again once the new messages have been laid out
        widget.setStyleSheet(original + " QFrame#" + widget.objectName() + " { border: 2px solid palette(highlight); }")
        QTimer.singleShot(1500, self, unflash)

    def is_in_view(self, message_id: int) -> bool:
        """True when some of the message is inside the visible area."""
        widget = self._widgets.get(message_id)
        if widget is None:
            return False
        top = widget.mapTo(self._container, widget.rect().topLeft()).y()
        value = self.verticalScrollBar().value()
        return top < value + self.viewport().height() and top + widget.height() > value

    def set_renderer(self, renderer: MarkdownRenderer) -> None:
        """Switch theme and re-render."""
        self._renderer = renderer
        for widget in self._order:
            widget.set_renderer(renderer)

    def _update_hint(self) -> None:
        self.empty_hint.setVisible(not self._order)

    # -- scrolling ---------------------------------------------------------------------------
    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24
        if value == 0 and self._lo > 0 and bar.maximum() > 0:
            QTimer.singleShot(0, self, self.show_earlier)  # scrolled to the top: bring in older messages

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._stick_to_bottom:
            QTimer.singleShot(0, self, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))
