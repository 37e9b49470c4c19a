"""The tools in the window: the *Tools* control, the two approval dialogs, and tool results in
the chat view. The window builds one :class:`ToolWiring` and needs to know nothing else of it.

- ToolTurn.approval_needed → :class:`ToolApprovalDialog` → ToolTurn.decide
- ToolService.start_approval_needed → :class:`ServerStartDialog` (one after the other) →
  ToolService.approve_start
- ToolTurn.result_added → the tool message appended to the open conversation's view
- an answer that ended by calling tools → "Calling get_weather…" on it
- ToolService.problem → the window's notice; the end of an answer closes a waiting call dialog
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QBoxLayout, QWidget

from desktop.core.conversations.records import Message
from desktop.services.chat_controller import ChatController
from desktop.services.tool_service import ToolService
from desktop.ui.chat.chat_view import ChatView
from desktop.ui.chat.tool_approval import ServerStartDialog, ToolApprovalDialog
from desktop.ui.chat.tools_control import ToolsControl


class ToolWiring(QObject):
    """Connects ``tools`` and the controller's tool turn to the window's widgets.

    ``open_settings(tab)`` opens the Settings dialog at a tab; ``show_problem(text)`` is the
    window's notice; ``applied``: a signal after a conversation's settings were restored (the
    control shows them again); ``place``: the layout the *Tools* control goes in (above its
    closing stretch, if it has one)."""

    def __init__(self, window: QWidget, tools: ToolService, controller: ChatController, chat_view: ChatView, *,
                 place: QBoxLayout, open_settings: Callable[[str], None], show_problem: Callable[[str], None],
                 applied: Any = None) -> None:
        super().__init__(window)
        self._window, self._tools, self._controller, self._view = window, tools, controller, chat_view
        self.control = ToolsControl(tools, controller.settings, window)
        self.control.settings_requested.connect(lambda: open_settings("Tools"))
        last = place.count() - 1
        place.insertWidget(last if last >= 0 and place.itemAt(last).spacerItem() else place.count(), self.control)
        self.call_dialog: ToolApprovalDialog | None = None
        self.start_dialog: ServerStartDialog | None = None
        self._starts: list[tuple[str, str]] = []  # servers waiting for the person, after the one asked
        tools.problem.connect(show_problem)
        tools.start_approval_needed.connect(self.ask_start)
        turn = controller.tool_turn
        if turn is not None:
            turn.approval_needed.connect(self.ask_call)
            turn.result_added.connect(self.show_result)
        controller.answer_finished.connect(self._on_answer_finished)
        controller.busy_changed.connect(self._on_busy)
        controller.conversation_opened.connect(lambda *_a: self.control.refresh())
        if applied is not None:
            applied.connect(lambda *_a: self.control.refresh())

    # -- a call waits for the person -------------------------------------------------------------
    def ask_call(self, request: dict[str, Any]) -> None:
        """Ask whether the model's call may run (non-blocking)."""
        if self.call_dialog is not None:
            self.call_dialog.dismiss()
        dialog = self.call_dialog = ToolApprovalDialog(request, self._window)
        dialog.decided.connect(self._decided)
        dialog.open()

    def _decided(self, decision: str) -> None:
        self.call_dialog = None
        if self._controller.tool_turn is not None:
            self._controller.tool_turn.decide(decision)

    def _on_busy(self, busy: bool) -> None:
        if not busy and self.call_dialog is not None:  # the answer ended (stopped, failed): nothing waits
            dialog, self.call_dialog = self.call_dialog, None
            dialog.dismiss()

    # -- a server waits to be started ------------------------------------------------------------
    def ask_start(self, server: str, command_line: str) -> None:
        """Ask whether a server's command may run; several are asked one after the other."""
        if self.start_dialog is not None:
            self._starts.append((server, command_line))
            return
        parent = QApplication.activeModalWidget() or self._window  # above the Settings dialog when it asked
        dialog = self.start_dialog = ServerStartDialog(server, command_line, parent)
        dialog.decided.connect(lambda ok: self._start_decided(server, ok))
        dialog.open()

    def _start_decided(self, server: str, ok: bool) -> None:
        self.start_dialog = None
        self._tools.approve_start(server, ok)
        if self._starts:
            self.ask_start(*self._starts.pop(0))

    # -- results in the view -------------------------------------------------------------------
    def show_result(self, message: Message) -> None:
        """A tool message of the answer being written: shown when its conversation is open."""
        if message.conversation_id == self._controller.conversation_id:
            self._view.add_message(message)

    def _on_answer_finished(self, message_id: int, _status: str, stats: dict) -> None:
        calls = stats.get("tool_calls") or []
        if calls:
            self._view.set_tool_calls(message_id, list(calls))
