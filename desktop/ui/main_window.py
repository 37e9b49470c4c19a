"""The main window: conversations on the left, the chat on the right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.core.conversations.records import Conversation, Message
from desktop.core.library.entries import ModelEntry
from desktop.core.system.network_guard import NetworkLog
from desktop.core.text.markdown import MarkdownRenderer
from desktop.core.text.units import format_size
from desktop.services.chat_controller import ChatController
from desktop.services.chat_settings_service import ChatSettingsService
from desktop.services.secrets_service import SecretsService
from desktop.services.tool_service import ToolService
from desktop.services.transfer_service import TransferService, format_for
from desktop.ui.chat.chat_view import ChatView
from desktop.ui.chat.composer import Composer
from desktop.ui.chat.thinking_controls import ThinkingControls
from desktop.ui.chat.tool_wiring import ToolWiring
from desktop.ui.file_dialogs import export_file_dialog, import_file_dialog, model_file_dialog
from desktop.ui.notices import Banner, UndoOffer
from desktop.ui.settings.settings_builder import build_settings_dialog
from desktop.ui.settings.settings_dialog import SettingsDialog
from desktop.ui.sidebar import Sidebar
from desktop.ui.status_line import format_stats
from desktop.ui.theme import apply_palette, current_theme


class MainWindow(QMainWindow):
    """The window; ``log_dir`` is the folder Help → Open log folder shows.

    Signals: closing() just before the window closes (the app saves and shuts down)."""

    closing = Signal()

    def __init__(self, controller: ChatController, network: NetworkLog, secrets: SecretsService,
                 chat_settings: ChatSettingsService | None = None, transfer: TransferService | None = None, *,
                 log_dir: Path, tools: ToolService | None = None, mcp_config: Path | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.log_dir = log_dir
        self.chat_settings = chat_settings
        self.transfer = transfer
        self.network = network
        self.secrets, self.tools, self.mcp_config = secrets, tools, mcp_config
        self.settings_tabs: list = []  # (name, factory) of tabs app.py adds to Settings (Server, Engines)
        self.engines = None  # the EngineService app.py gives (its hosts are listed under Privacy)
        self.setWindowTitle("Cove")
        self.setAcceptDrops(True)
        self.renderer = MarkdownRenderer(current_theme())
        self._build()
        self._connect()
        self.tool_wiring = None if tools is None else ToolWiring(
            self, tools, controller, self.chat_view, place=self.composer_buttons,
            open_settings=self.open_settings_dialog, show_problem=self.show_problem,
            applied=chat_settings.applied if chat_settings else None)
        self.resize(1100, 760)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.sidebar = Sidebar()
        self.chat_view = ChatView(self.renderer)
        self.banner_box = Banner()
        self.banner = self.banner_box.label  # the message shown
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(4, 8, 8, 8)
        column.addLayout(self._build_top_row())
        column.addWidget(self.banner_box)
        column.addWidget(self.chat_view, 1)
        column.addLayout(self._build_composer_row())
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 860])
        self.setCentralWidget(self.splitter)
        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self.models_dialog_factory: Callable[[], Any] | None = None  # set by the app
        self.models_dialog: Any = None
        self.file_dialog: QFileDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.edit_dialog: QInputDialog | None = None

    def _build_top_row(self) -> QHBoxLayout:
        """The model picker and the buttons above the chat."""
        self.model_picker = QComboBox()
        self.model_picker.setMinimumWidth(200)
        self.model_picker.setToolTip("The model that answers")
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.setToolTip("Open a .gguf file from this computer (or drop one on the window)")
        self.models_button = QPushButton("Models…")
        self.models_button.setToolTip("Download models from Hugging Face and manage the ones on this computer")
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setToolTip("System prompt, sampling, context length, threads; "
                                        "privacy and network activity")
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setToolTip("Write a new answer to the last question")
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.model_picker, 1)
        top.addWidget(self.open_model_button)
        top.addWidget(self.models_button)
        top.addWidget(self.settings_button)
        top.addStretch(0)
        top.addWidget(self.regenerate_button)
        return top

    def _build_composer_row(self) -> QHBoxLayout:
        """The composer with Send and Stop beside it."""
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.hide()
        bottom = QHBoxLayout()
        bottom.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        self.thinking_controls = ThinkingControls()
        self.thinking_controls.hide()
        buttons.addWidget(self.thinking_controls)
        self.composer_buttons = buttons  # the Tools control goes here (ToolWiring)
        buttons.addStretch(1)
        bottom.addLayout(buttons)
        return bottom

    def _build_status_bar(self) -> None:
        """Model state, the Undo offer after a delete, and the last answer's figures."""
        self.undo_box = UndoOffer()
        self.undo_label, self.undo_button = self.undo_box.label, self.undo_box.button
        self.model_status = QLabel("No model loaded")
        self.stats_label = QLabel()
        self.statusBar().addWidget(self.model_status, 1)
        self.statusBar().addPermanentWidget(self.undo_box)
        self.statusBar().addPermanentWidget(self.stats_label)

    def _build_actions(self) -> None:
        """The window's keyboard shortcuts."""
        new_action = QAction("New chat", self, shortcut=QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.controller.new_conversation)
        stop_action = QAction("Stop", self, shortcut=QKeySequence(Qt.Key.Key_Escape))
        stop_action.triggered.connect(self.controller.stop)
        open_action = QAction("Open model…", self, shortcut=QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self.open_model_dialog)
        find_action = QAction("Search conversations", self, shortcut=QKeySequence.StandardKey.Find)
        find_action.triggered.connect(lambda: (self.sidebar.search_box.setFocus(), self.sidebar.search_box.selectAll()))
        self.find_action = find_action
        models_action = QAction("Models…", self, shortcut=QKeySequence("Ctrl+Shift+M"))
        models_action.triggered.connect(lambda: self.open_models_dialog())
        self.addActions([new_action, stop_action, open_action, find_action, models_action])

    def _build_menus(self) -> None:
        """The menu bar: Help, with the way to the log files."""
        help_menu = self.menuBar().addMenu("&Help")
        self.help_menu = help_menu
        self.open_log_action = help_menu.addAction("Open log folder")
        self.open_log_action.setStatusTip("Show the folder with Cove's log files (to attach one to a bug report)")
        self.open_log_action.triggered.connect(self.open_log_folder)

    def _connect(self) -> None:
        c = self.controller
        self.sidebar.new_requested.connect(c.new_conversation)
        self.sidebar.open_requested.connect(c.open_conversation)
        self.sidebar.rename_requested.connect(c.rename_conversation)
        self.sidebar.delete_requested.connect(c.delete_conversation)
        self.sidebar.pin_requested.connect(c.set_pinned)
        self.sidebar.search_requested.connect(lambda query: c.search(query, self.sidebar.search_thinking.isChecked()))
        self.sidebar.hit_requested.connect(c.open_conversation)
        c.search_results.connect(self.sidebar.show_results)
        c.conversation_deleted.connect(self.undo_box.offer)
        self.undo_box.undo_requested.connect(c.restore_conversation)
        self.composer.submitted.connect(self.send)
        self.send_button.clicked.connect(lambda: self.send(self.composer.toPlainText()))
        self.stop_button.clicked.connect(c.stop)
        self.regenerate_button.clicked.connect(c.regenerate)
        self.open_model_button.clicked.connect(self.open_model_dialog)
        self.models_button.clicked.connect(lambda: self.open_models_dialog())
        self.settings_button.clicked.connect(lambda: self.open_settings_dialog("Generation"))
        self.model_picker.activated.connect(self._picker_activated)
        self.chat_view.copied.connect(lambda _t: self.statusBar().showMessage("Code copied to the clipboard", 3000))
        c.conversations_changed.connect(self._on_conversations)
        c.conversation_opened.connect(self._on_conversation_opened)
        c.message_added.connect(self.chat_view.add_message)
        c.answer_started.connect(self._on_answer_started)
        c.answer_updated.connect(self.chat_view.update_text)
        c.reasoning_updated.connect(self._on_reasoning)
        self.thinking_controls.choice_changed.connect(c.set_thinking_choice)
        self.thinking_controls.answer_now.connect(c.answer_now)
        c.answer_finished.connect(self._on_answer_finished)
        c.versions_changed.connect(self.chat_view.apply_versions)
        self.chat_view.version_step.connect(c.show_version)
        self.chat_view.edit_requested.connect(self.edit_message_dialog)
        c.busy_changed.connect(self._on_busy)
        c.model_state.connect(self._on_model_state)
        c.models_listed.connect(self._on_models)
        c.problem.connect(self.show_problem)
        c.draft_returned.connect(self._restore_draft)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_scheme)
        if self.chat_settings is not None:
            self.chat_settings.presets_changed.connect(self._on_presets)
            self.chat_settings.applied.connect(lambda _text: self._show_thinking_choice())
        self.sidebar.export_requested.connect(self.export_dialog)
        self.sidebar.import_requested.connect(self.import_dialog)
        if self.transfer is not None:
            self.transfer.done.connect(lambda text: self.statusBar().showMessage(text, 10_000))
            self.transfer.failed.connect(self.show_problem)
            self.transfer.imported.connect(lambda _result: c.refresh_conversations())

    # -- actions ----------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Send the composer's text; it is cleared only once the controller accepted it."""
        if self.controller.send(text):
            self.composer.clear()
            self.banner_box.hide()

    def edit_message_dialog(self, message_id: int) -> None:
        """Edit a question (non-blocking dialog); the edited one is asked as a new version."""
        widget = self.chat_view.widget_for(message_id)
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Edit message")
        dialog.setLabelText("Your message (the original is kept as a version):")
        dialog.setOption(QInputDialog.InputDialogOption.UsePlainTextEditForTextInput, True)
        dialog.setTextValue(widget.text if widget else "")
        dialog.textValueSelected.connect(lambda text: self.controller.edit_message(message_id, text))
        self.edit_dialog = dialog
        dialog.open()

    def _restore_draft(self, text: str) -> None:
        if not self.composer.toPlainText().strip():
            self.composer.setPlainText(text)

    def open_model_dialog(self) -> None:
        """Let the person choose a .gguf file (non-blocking dialog)."""
        dialog = self.file_dialog = model_file_dialog(self)
        dialog.fileSelected.connect(self.open_model_file)
        dialog.open()

    def open_models_dialog(self, tab: str = "Download") -> Any:
        """Show the Models window (download pane and library), created on first use."""
        if self.models_dialog is None and self.models_dialog_factory is not None:
            self.models_dialog = self.models_dialog_factory()
            self.models_dialog.use_model.connect(self._use_downloaded)
        if self.models_dialog is not None:
            self.models_dialog.show_tab(tab)
            self.models_dialog.show()
            self.models_dialog.raise_()
            self.models_dialog.activateWindow()
        return self.models_dialog

    def _use_downloaded(self, path: str) -> None:
        self.open_model_file(path)
        self.raise_()
        self.activateWindow()

    def export_dialog(self, conversation_id: int) -> None:
        """Ask where to export one conversation (or all of them for 0), as Markdown or JSON."""
        if self.transfer is None:
            return
        dialog = self.file_dialog = export_file_dialog(self, conversation_id)
        dialog.fileSelected.connect(lambda path: self.transfer.export(
            Path(path), format_for(Path(path), dialog.selectedNameFilter()),
            [conversation_id] if conversation_id else None))
        dialog.open()

    def import_dialog(self) -> None:
        """Ask for a Cove JSON export or a ChatGPT export (conversations.json or the .zip) to import."""
        if self.transfer is None:
            return
        dialog = self.file_dialog = import_file_dialog(self)
        dialog.fileSelected.connect(lambda path: self.transfer.import_from(Path(path)))
        dialog.open()

    def open_settings_dialog(self, tab: str = "Generation") -> None:
        """Edit the settings (non-blocking dialog), opened at ``tab``."""
        dialog = self.settings_dialog = build_settings_dialog(self, self.controller, self.chat_settings, self.network,
                                                              self.secrets, self.tools, self.mcp_config,
                                                              self.settings_tabs, self.engines)
        dialog.show_tab(tab)
        dialog.open()

    def _on_presets(self, presets: list) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.generation.set_presets(presets, self.chat_settings.conversation_preset)

    def open_log_folder(self) -> None:
        """Show the folder with Cove's log files in the file manager."""
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_dir))):
            self.show_problem(f"Cove could not open the log folder. It is {self.log_dir}")

    def open_model_file(self, path: str) -> None:
        """Use a model file the person chose or dropped."""
        self.controller.select_model(path)

    def set_read_only(self, message: str) -> None:
        """Another window owns the data: reading works here, writing is switched off and says why."""
        self.composer.setReadOnly(True)
        self.composer.setPlaceholderText("Read-only: Cove is already open in another window; write there.")
        for button in (self.send_button, self.regenerate_button, self.models_button):
            button.setEnabled(False)  # models too: downloads and the library write to the shared folder
            button.setToolTip(message)
        self.models_dialog_factory = None
        self.show_problem(message)

    def show_problem(self, message: str) -> None:
        """Show a message the person must read, above the chat."""
        self.banner_box.show_message(message)

    def _picker_activated(self, index: int) -> None:
        path = self.model_picker.itemData(index)
        if path and path != self.controller.model_path:
            self.controller.select_model(path)

    # -- controller events ------------------------------------------------------------------------
    def _on_conversations(self, conversations: list[Conversation]) -> None:
        self.sidebar.set_conversations(conversations, self.controller.conversation_id)

    def _on_conversation_opened(self, cid: int, messages: list[Message]) -> None:
        self.chat_view.set_messages(messages, self.controller.streaming_message_id, self.controller.focus_message)
        self.chat_view.apply_versions(self.controller.versions)
        answers = [m for m in messages if m.role == "assistant" and m.stats]
        self.chat_view.mark_context_start(int(answers[-1].stats.get("dropped_messages", 0)) if answers else 0)
        if self.controller.focus_message:
            self.chat_view.scroll_to(self.controller.focus_message)
        self._update_regenerate()
        self.sidebar.select(cid)
        self.composer.setFocus()

    def _on_answer_started(self, message: Message) -> None:
        if message.conversation_id == self.controller.conversation_id:  # not a tool round of one left
            self.chat_view.add_message(message)

    def _update_regenerate(self) -> None:
        has_question = any(w.message.role == "user" for w in self.chat_view.message_widgets())
        self.regenerate_button.setEnabled(has_question and not self.controller.busy)

    def _on_answer_finished(self, message_id: int, status: str, stats: dict) -> None:
        self.chat_view.finish_message(message_id, status, stats.get("error", ""))  # its text came already
        self.stats_label.setText(format_stats(stats))
        if stats.get("dropped_messages"):
            self.chat_view.mark_context_start(int(stats["dropped_messages"]))

    def _on_busy(self, busy: bool) -> None:
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        self.thinking_controls.set_thinking(False)
        self._update_regenerate()

    def _on_reasoning(self, message_id: int, text: str, seconds: float, thinking: bool) -> None:
        self.chat_view.update_reasoning(message_id, text, seconds, thinking)
        self.thinking_controls.set_thinking(thinking and self.controller.busy)

    def _show_thinking_choice(self) -> None:
        generation = self.controller.settings.generation
        self.thinking_controls.set_model(self.controller.model_info.get("thinking", {}), generation.think,
                                         generation.reasoning_effort)

    def _on_model_state(self, state: str, text: str) -> None:
        self.model_status.setText(text if state != "failed" else "Model not loaded: " + text)
        ready = state == "ready"
        self.composer.setPlaceholderText(
            "Message the model…  (Enter sends, Shift+Enter adds a line)" if ready or state != "loading"
            else "Loading the model…")
        if ready:
            self._select_in_picker(self.controller.model_path)
            self._show_thinking_choice()

    def _on_models(self, entries: list[ModelEntry]) -> None:
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for entry in entries:
            size = f"  ({format_size(entry.size)})" if entry.size else ""  # a remote model's name says its engine
            self.model_picker.addItem(f"{entry.name}{size}", entry.key)
        self.model_picker.blockSignals(False)
        self._select_in_picker(self.controller.model_path)

    def _select_in_picker(self, path: str) -> None:
        index = self.model_picker.findData(path)
        if index >= 0:
            self.model_picker.setCurrentIndex(index)

    def _on_scheme(self, *_args: object) -> None:
        apply_palette(QApplication.instance())
        self.renderer = MarkdownRenderer(current_theme())
        self.chat_view.set_renderer(self.renderer)

    # -- window events ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_model_file(url.toLocalFile())
                event.acceptProposedAction()
                return

    def geometry_state(self) -> tuple[str, str]:
        """Window geometry and splitter state, base64, for the settings file."""
        return (bytes(self.saveGeometry().toBase64()).decode(), bytes(self.splitter.saveState().toBase64()).decode())

    def restore_state(self, geometry: str, splitter: str) -> None:
        """Restore what :meth:`geometry_state` returned."""
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        if splitter:
            self.splitter.restoreState(QByteArray.fromBase64(splitter.encode()))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.emit()
        super().closeEvent(event)
