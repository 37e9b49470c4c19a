"""What the window does, without widgets: conversations, sending, streaming, stopping.

Talks to the store thread and the generation thread; the widgets only call its methods and
listen to its signals.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from desktop.core.conversations.store import COMPLETE, STREAMING, Conversation, Message, Store, suggest_title
from desktop.core.engine.prompt import messages_for_model
from desktop.core.library.model_library import ModelLibrary
from desktop.core.system.settings import Settings
from desktop.services.conversation_actions import ConversationListActions
from desktop.services.generation_service import GenerationService
from desktop.services.model_actions import ModelActions
from desktop.services.store_service import StoreService
from desktop.services.streamed_answer import StreamedAnswer
from desktop.services.tool_turn import ToolTurn

PAINT_INTERVAL_MS = 33  # at most ~30 repaints a second while streaming


class ChatController(QObject, ConversationListActions, ModelActions):
    """Signals:
        conversations_changed(list): Conversation headers, newest first.
        conversation_opened(int, list): a conversation id and its shown messages.
        message_added(object): a user Message appended to the open conversation.
        answer_started(object): the placeholder Message of a new answer in the open conversation.
        answer_updated(int, str): message id and the full text so far (coalesced; the last one,
            sent just before answer_finished, carries the whole answer).
        reasoning_updated(int, str, float, bool): message id, a thinking model's reasoning so far,
            seconds of thinking, and whether it still thinks (coalesced like answer_updated).
        answer_finished(int, str, dict): message id, final status, generation figures.
        busy_changed(bool): generating or not.
        model_state(str, str): state ('none', 'loading', 'ready', 'failed') and a description.
        models_listed(list): ModelEntry items for the picker, then RemoteEntry items (engines' models).
        problem(str): something the person should be told (bad input, failures).
        draft_returned(str): a message that could not be stored goes back into the composer.
        versions_changed(dict): message id -> ids of its versions changed for the shown branch.
        search_results(str, list): the query and its SearchHit list, best first.
        conversation_deleted(int, str): id and title of a conversation just deleted (undo is possible).
    """

    conversations_changed = Signal(list)
    conversation_opened = Signal(int, list)
    message_added = Signal(object)
    answer_started = Signal(object)
    answer_updated = Signal(int, str)
    reasoning_updated = Signal(int, str, float, bool)
    answer_finished = Signal(int, str, dict)
    busy_changed = Signal(bool)
    model_state = Signal(str, str)
    models_listed = Signal(list)
    problem = Signal(str)
    draft_returned = Signal(str)
    versions_changed = Signal(object)  # int keys: not a QVariantMap
    search_results = Signal(str, list)
    conversation_deleted = Signal(int, str)

    def __init__(self, store: StoreService, generation: GenerationService, library: ModelLibrary,
                 settings: Settings, parent: QObject | None = None, tool_turn: ToolTurn | None = None) -> None:
        super().__init__(parent)
        self.tool_turn = tool_turn  # the tool rounds of the answer being written (None: no tools at all)
        self._history: list[Message] = []  # what the answer being written answers
        self._store = store
        self._gen = generation
        self._library = library
        self.settings = settings
        self.conversation_id = 0
        self.versions: dict[int, list[int]] = {}  # message id -> ids of its versions, for < 2/3 >
        self.focus_message = 0
        self.model_path = ""
        self.model_ready = False
        self.model_info: dict = {}
        self.last_stats: dict = {}
        self._request_id = 0
        self._streaming_message: Message | None = None
        self._streaming_conversation = 0
        self._stream = StreamedAnswer()  # the answer being written, as streamed
        self._send_started = 0.0
        self._paint = QTimer(self)
        self._paint.setSingleShot(True)
        self._paint.setInterval(PAINT_INTERVAL_MS)
        self._paint.timeout.connect(self._paint_answer)
        generation.piece.connect(self._on_piece)
        generation.finished.connect(self._on_finished)
        generation.failed.connect(self._on_failed)
        generation.model_loading.connect(self._on_model_loading)
        generation.model_loaded.connect(self._on_model_loaded)
        generation.model_failed.connect(self._on_model_failed)

    # -- state -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while an answer is being generated."""
        return self._streaming_message is not None

    @property
    def streaming_message_id(self) -> int:
        """Id of the answer being generated, 0 when idle."""
        return self._streaming_message.id if self._streaming_message else 0

    # -- conversations -------------------------------------------------------------------------
    def refresh_conversations(self) -> None:
        """Reload the conversation list."""
        self._store.submit(lambda s: s.list_conversations(), self.conversations_changed.emit)

    def open_conversation(self, conversation_id: int, focus_message: int = 0) -> None:
        """Show a stored conversation (scrolled to ``focus_message`` when given)."""
        self._leave_current(conversation_id)

        def job(store: Store) -> tuple[int, list[Message], dict[int, list[int]]]:
            if not store.get_conversation(conversation_id):
                return conversation_id, [], {}
            path = store.active_path(conversation_id)
            return conversation_id, path, store.version_map(path)

        self._store.submit(job, lambda result: self._show(*result, focus_message))

    def _show(self, cid: int, messages: list[Message], versions: dict[int, list[int]], focus: int = 0) -> None:
        self.conversation_id = cid
        self.settings.last_conversation_id = cid
        self.versions = versions
        self.focus_message = focus
        self.conversation_opened.emit(cid, messages)

    def show_version(self, message_id: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of a message and the branch below it."""
        siblings = self.versions.get(message_id, [])
        if self.busy or message_id not in siblings:
            return
        index = siblings.index(message_id) + step
        if not 0 <= index < len(siblings):
            return
        cid, target = self.conversation_id, siblings[index]

        def job(store: Store) -> tuple[int, list[Message], dict[int, list[int]]]:
            path = store.switch_branch(cid, target)
            return cid, path, store.version_map(path)

        self._store.submit(job, lambda result: self._show(*result))

    def edit_message(self, message_id: int, text: str) -> None:
        """Ask again with an edited question: a new version beside the old one, then a new answer."""
        if not text.strip():
            self.problem.emit("The message is empty. Type a question first.")
            return
        if self.busy or not self.model_ready:
            self.problem.emit("Wait for the answer being written, or pick a model first.")
            return
        cid = self.conversation_id
        self._set_busy_placeholder()

        def job(store: Store) -> tuple[list[Message], Message, dict[int, list[int]]]:
            user = store.edit_user_message(message_id, text)
            history = store.active_path(cid)
            answer = store.add_message(cid, "assistant", "", parent_id=user.id, status=STREAMING)
            return history, answer, store.version_map(history)

        def done(result: tuple[list[Message], Message, dict[int, list[int]]]) -> None:
            history, answer, versions = result
            self._show(cid, history, versions)
            self._start_answer(cid, history, answer)

        self._store.submit(job, done, lambda _exc: self._clear_busy())

    def _leave_current(self, next_id: int) -> None:
        if self.conversation_id and self.conversation_id != next_id and not self.busy:
            self._gen.leave(self.conversation_id)

    def new_conversation(self) -> None:
        """Start an empty conversation (it is stored when the first message is sent)."""
        self._leave_current(0)
        self.conversation_id = 0
        self.settings.last_conversation_id = 0
        self.conversation_opened.emit(0, [])

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation (the window asks first, and offers Undo after)."""
        if conversation_id == self._streaming_conversation and self.busy:
            self.problem.emit("Stop the answer being written before deleting its conversation.")
            return

        def job(store: Store) -> tuple[str, list[Conversation]]:
            conversation = store.get_conversation(conversation_id)
            store.delete_conversation(conversation_id)
            return (conversation.title if conversation else ""), store.list_conversations()

        def done(result: tuple[str, list[Conversation]]) -> None:
            title, conversations = result
            self.conversations_changed.emit(conversations)
            self.conversation_deleted.emit(conversation_id, title)

        self._store.submit(job, done)
        self._gen.forget(conversation_id)
        if conversation_id == self.conversation_id:
            self.new_conversation()

    # -- chatting ------------------------------------------------------------------------------
    def send(self, text: str) -> bool:
        """Store the person's message, then ask for an answer. False when refused (message emitted)."""
        if not text.strip():
            self.problem.emit("The message is empty. Type a question first.")
            return False
        if self.busy:
            self.problem.emit("An answer is still being written. Wait for it or press Stop.")
            return False
        if not self.model_ready:
            self.problem.emit("No model is ready yet. Pick a model first.")
            return False
        if self._store.failure:
            self.problem.emit(self._store.failure)
            return False
        cid, model = self.conversation_id, self.model_path
        self._set_busy_placeholder()

        def job(store: Store) -> tuple[Conversation, list[Message], Message, Message]:
            conversation = store.get_conversation(cid) if cid else None
            if conversation is None:  # conversation and question in one transaction
                conversation, user = store.create_conversation_with_message(suggest_title(text), model, text)
                history: list[Message] = []
            else:
                history = store.active_path(conversation.id)
                user = store.add_message(conversation.id, "user", text,
                                         parent_id=history[-1].id if history else None)
            answer = store.add_message(conversation.id, "assistant", "", parent_id=user.id, status=STREAMING)
            return conversation, history, user, answer

        def done(result: tuple[Conversation, list[Message], Message, Message]) -> None:
            conversation, history, user, answer = result
            new = conversation.id != self.conversation_id
            self.conversation_id = conversation.id
            self.settings.last_conversation_id = conversation.id
            if new:
                self.refresh_conversations()
            self.message_added.emit(user)
            self._start_answer(conversation.id, history + [user], answer)

        def failed(_exc: BaseException) -> None:
            self._clear_busy()
            self.draft_returned.emit(text)

        self._store.submit(job, done, failed)
        return True

    def regenerate(self) -> None:
        """Write a new answer to the last question; the old answer stays stored as a branch."""
        if self.busy or not self.model_ready or not self.conversation_id:
            if not self.model_ready:
                self.problem.emit("No model is ready yet. Pick a model first.")
            return
        cid = self.conversation_id
        self._set_busy_placeholder()

        def job(store: Store) -> tuple[list[Message], Message] | None:
            path = store.active_path(cid)
            while path and path[-1].role in ("assistant", "tool"):  # back to the question
                path.pop()
            if not path:
                return None
            answer = store.add_message(cid, "assistant", "", parent_id=path[-1].id, status=STREAMING)
            return path, answer

        def done(result: tuple[list[Message], Message] | None) -> None:
            if result is None:
                self._clear_busy()
                self.problem.emit("There is no question to answer again.")
                return
            history, answer = result
            self._show(cid, history, {})
            self._start_answer(cid, history, answer)
            self._store.submit(lambda store: store.version_map(history + [answer]), self._update_versions)

        self._store.submit(job, done, lambda _exc: self._clear_busy())

    def _update_versions(self, versions: dict[int, list[int]]) -> None:
        self.versions = versions
        self.versions_changed.emit(versions)

    def stop(self) -> None:
        """Stop the answer being written (and its tool rounds); what was written so far is kept."""
        self._gen.stop()
        if self.tool_turn is not None and self.tool_turn.active:
            self.tool_turn.cancel()

    def _set_busy_placeholder(self) -> None:
        # Busy from the click on, so a second Enter cannot send twice.
        self._streaming_message = Message(0, 0, None, "assistant", "", STREAMING, time.time())
        self.busy_changed.emit(True)

    def _clear_busy(self) -> None:
        self._streaming_message = None
        self.busy_changed.emit(False)

    def _start_answer(self, conversation_id: int, history: list[Message], answer: Message) -> None:
        """A new answer: with the conversation's tools once their servers run, else at once."""
        self._streaming_message, self._streaming_conversation = answer, conversation_id
        if self.tool_turn is None:
            self._run_round(conversation_id, history, answer)
            return

        def ready() -> None:
            if self._streaming_message is answer:  # not stopped meanwhile
                self._run_round(conversation_id, history, answer)

        generation = self.settings.generation
        self.tool_turn.prepare(list(generation.tools), generation.require_tool, ready, self.problem.emit)

    def _run_round(self, conversation_id: int, history: list[Message], answer: Message) -> None:
        self._streaming_message, self._streaming_conversation, self._history = answer, conversation_id, list(history)
        self._stream = StreamedAnswer()
        self.answer_started.emit(answer)
        messages = messages_for_model(history, self.settings.generation.system_prompt)
        self._send_started = time.perf_counter()
        tools = self.tool_turn.request() if self.tool_turn is not None else {}
        self._request_id = self._gen.generate(messages, asdict(self.settings.generation), answer.id, conversation_id,
                                              tools)

    def _continue_round(self, answered: Message, results: list[Message], answer: Message) -> None:
        if self._streaming_message is not None:
            self._run_round(self._streaming_conversation, self._history + [answered] + results, answer)

    def _end_turn(self, problem: str) -> None:
        self._clear_busy()
        if problem:
            self.problem.emit(problem)

    @property
    def answer_text(self) -> str:
        """The text of the answer being written (or of the last one), as streamed so far."""
        return self._stream.text

    @property
    def thinking(self) -> bool:
        """True while a thinking model is still thinking about the answer being written."""
        return self.busy and self._stream.thinking

    def answer_now(self) -> None:
        """Cut the thinking short: the model goes on to its answer."""
        self._gen.answer_now()

    def set_thinking_choice(self, think: str, effort: str) -> None:
        """Thinking on, off or the model's default ('auto'), and the effort, for this conversation
        (stored with its settings when the next answer starts)."""
        self.settings.generation.think, self.settings.generation.reasoning_effort = think, effort

    def _end_reasoning(self, seconds: float | None = None) -> None:
        if self._streaming_message is not None and self._stream.reasoning:
            self.reasoning_updated.emit(self._streaming_message.id, self._stream.reasoning,
                                        self._stream.thinking_seconds() if seconds is None else seconds, False)

    @Slot(int, str, str)
    def _on_piece(self, request_id: int, kind: str, piece: str) -> None:
        if request_id != self._request_id:
            return
        self._stream.add(kind, piece)
        if not self._paint.isActive():
            self._paint.start()

    def _paint_answer(self) -> None:
        if self._streaming_message is not None:
            stream, message_id = self._stream, self._streaming_message.id
            if stream.reasoning:
                self.reasoning_updated.emit(message_id, stream.reasoning, stream.thinking_seconds(), stream.thinking)
            self.answer_updated.emit(message_id, stream.text)

    @Slot(int, str, dict)
    def _on_finished(self, request_id: int, status: str, stats: dict) -> None:
        if request_id != self._request_id or self._streaming_message is None:
            return
        self._paint.stop()
        self._paint_answer()
        self._end_reasoning(float(stats.get("thinking_s", 0.0)) or None)
        calls = stats.get("tool_calls") or []
        answered = replace(self._streaming_message, content=self._stream.text, reasoning=self._stream.reasoning,
                           status=status, tool_calls=calls)
        self.last_stats = stats
        turn = self.tool_turn
        if status == COMPLETE and calls and turn is not None and turn.active:
            self.answer_finished.emit(answered.id, status, stats)  # busy still: the tool rounds go on
            turn.after_round(self._streaming_conversation, answered, calls,
                             lambda results, answer: self._continue_round(answered, results, answer), self._end_turn)
            return
        self._clear_busy()
        self.answer_finished.emit(answered.id, status, stats)

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id != self._request_id or self._streaming_message is None:
            return
        self._paint.stop()
        self._paint_answer()
        self._end_reasoning()
        message_id = self._streaming_message.id
        self._clear_busy()
        self.answer_finished.emit(message_id, "failed", {"error": message})
        self.problem.emit(message)
