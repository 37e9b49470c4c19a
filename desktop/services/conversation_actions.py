"""The conversation list's simple actions (rename, pin, restore, search), for
:class:`desktop.services.chat_controller.ChatController`: each a job on the store thread whose
result comes back as the controller's signal."""

from __future__ import annotations

from typing import Any


class ConversationListActions:
    """Mixed into the controller, which has ``_store``, ``problem``, ``conversations_changed``
    and ``search_results``."""

    _store: Any
    problem: Any
    conversations_changed: Any
    search_results: Any

    def restore_conversation(self, conversation_id: int) -> None:
        """Undo a delete."""
        self._store.submit(lambda s: (s.restore_conversation(conversation_id), s.list_conversations())[1],
                           self.conversations_changed.emit)

    def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        """Pin a conversation to the top of the list, or unpin it."""
        self._store.submit(lambda s: (s.set_pinned(conversation_id, pinned), s.list_conversations())[1],
                           self.conversations_changed.emit)

    def search(self, query: str, thinking: bool = False) -> None:
        """Search every conversation (off the GUI thread; ``thinking``: answers' reasoning too);
        answers with search_results."""
        if not query.strip():
            self.search_results.emit(query, [])
            return
        self._store.submit(lambda s: s.search(query, limit=50, thinking=thinking),
                           lambda hits: self.search_results.emit(query, hits))

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Rename; blank titles are refused with a message."""
        if not title.strip():
            self.problem.emit("A conversation needs a title.")
            return
        self._store.submit(lambda s: (s.rename_conversation(conversation_id, title), s.list_conversations())[1],
                           self.conversations_changed.emit)
