"""The model library pane: every local model with its metadata, import, delete, disk use, and the
models folder. All disk work goes through :class:`desktop.services.library_service.LibraryService`;
this widget only shows its results and asks the person."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core.library.disk import DELETE, REFUSE, LibraryItem, LibrarySnapshot
from desktop.core.library.entries import SOURCE_LABELS
from desktop.core.models.metadata import format_parameters
from desktop.core.text.units import format_size
from desktop.services.library_service import LibraryService
from desktop.ui.models.markers_dialog import MarkersDialog

COLUMNS = ["Name", "Source", "Architecture", "Parameters", "Quantization", "Trained context", "Size",
           "Chat template", "Thinking"]
PATH_ROLE = Qt.ItemDataRole.UserRole


def row_texts(item: LibraryItem, markers: list[str] | None = None) -> list[str]:
    """The table cells of one model (``markers``: the thinking markers the person set for it)."""
    meta, entry = item.metadata, item.entry
    source = SOURCE_LABELS.get(entry.source, entry.source)
    if entry.repo_id:
        source = f"{source}: {entry.repo_id}"
    if meta.problem:
        return [entry.name, source, "cannot be used", "", "", "", format_size(entry.size), "", ""]
    return [entry.name, source, meta.architecture, format_parameters(meta.parameters), meta.quantization,
            f"{meta.context_length:,}" if meta.context_length else "", format_size(entry.size),
            "yes" if meta.chat_template else "no",
            f"thinks · your markers {markers[0]} … {markers[1]}" if markers else meta.thinking]


def disk_text(snapshot: LibrarySnapshot) -> str:
    """The footer: how many models, the disk they use, the free space by the models folder."""
    disk, count = snapshot.disk, len(snapshot.items)
    text = f"{count} model{'s' if count != 1 else ''}, {format_size(disk.total)} on disk"
    in_folder = disk.by_source.get("folder", 0)
    text += f" ({format_size(in_folder)} in the models folder)" if in_folder else ""
    if disk.free >= 0:
        text += f"; {format_size(disk.free)} free on the models folder's disk"
    return text + "."


class LibraryPane(QWidget):
    """Lists the library and drives the service.

    Signals:
        model_chosen(str): the person wants to chat with the model at this path ("Use" or a double
            click); the window loads it.
        thinking_markers_set(str, list): the person set (or cleared, with []) the thinking markers
            of the model at this path.
    Dialogs are opened with ``open()`` (never ``exec()``) and kept as attributes (``file_dialog``,
    ``folder_dialog``, ``confirm_box``, ``move_box``) so tests can answer them.
    """

    model_chosen = Signal(str)
    thinking_markers_set = Signal(str, list)

    def __init__(self, service: LibraryService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.snapshot: LibrarySnapshot | None = None
        self.file_dialog: QFileDialog | None = None
        self.folder_dialog: QFileDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self.move_box: QMessageBox | None = None
        self.markers_dialog: MarkersDialog | None = None
        self.current_model = ""  # the loaded model's path, marked in the list
        self._listed_once = False
        self._build_widgets()
        self._build_layout()
        self._connect(service)
        self._set_busy(bool(service.task))
        self.folder_label.setText(str(service.models_dir))
        if service.snapshot is not None:
            self.show_snapshot(service.snapshot)

    def _build_widgets(self) -> None:
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.change_folder_button = QPushButton("Change folder…")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.use_button = QPushButton("Use this model")
        self.copy_button = QPushButton("Copy a model in…")
        self.copy_button.setToolTip("Check a .gguf file and copy it into the models folder")
        self.link_button = QPushButton("Link a model…")
        self.link_button.setToolTip("Check a .gguf file and use it where it is (nothing is copied)")
        self.delete_button = QPushButton("Delete…")
        self.markers_button = QPushButton("Thinking markers…")
        self.markers_button.setToolTip("Set the text that opens and closes this model's thinking, "
                                       "for a model whose template does not say")
        self.refresh_button = QPushButton("Refresh")
        self.task_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.disk_label = QLabel("Reading the library…")

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Models folder:"))
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.change_folder_button)
        buttons = QHBoxLayout()
        for button in (self.use_button, self.copy_button, self.link_button, self.delete_button,
                       self.markers_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        task = QHBoxLayout()
        task.addWidget(self.task_label)
        task.addWidget(self.progress, 1)
        task.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(task)
        layout.addWidget(self.message)
        layout.addWidget(self.disk_label)

    def _connect(self, service: LibraryService) -> None:
        self.use_button.clicked.connect(self.use_selected)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.copy_button.clicked.connect(lambda: self.ask_import(link=False))
        self.link_button.clicked.connect(lambda: self.ask_import(link=True))
        self.delete_button.clicked.connect(self.ask_delete)
        self.markers_button.clicked.connect(self.ask_markers)
        self.refresh_button.clicked.connect(service.refresh)
        self.change_folder_button.clicked.connect(self.ask_folder)
        self.cancel_button.clicked.connect(service.cancel)
        service.listed.connect(self.show_snapshot)
        service.busy.connect(self._on_busy)
        service.progress.connect(self._on_progress)
        service.done.connect(self._on_finished)
        service.failed.connect(self._on_failed)

    def showEvent(self, event) -> None:  # noqa: ANN001 - Qt override
        """List the library the first time the pane is shown."""
        super().showEvent(event)
        if not self._listed_once:
            self._listed_once = True
            self.service.refresh()

    # -- the list ---------------------------------------------------------------------------------
    @Slot(object)
    def show_snapshot(self, snapshot: LibrarySnapshot) -> None:
        """Fill the table from a listing, keeping the selection."""
        selected = self.selected_item()
        self.snapshot = snapshot
        self.table.setRowCount(len(snapshot.items))
        for row, item in enumerate(snapshot.items):
            tip = f"{item.entry.path}\n{item.metadata.problem or item.metadata.title}".strip()
            in_use = item.entry.key == self.current_model
            markers = self.service.settings.thinking_markers.get(str(item.entry.path))
            for column, text in enumerate(row_texts(item, markers)):
                cell = QTableWidgetItem(text + (" (in use)" if in_use and column == 0 else ""))
                cell.setData(PATH_ROLE, item.entry.key)
                cell.setToolTip(tip)
                self.table.setItem(row, column, cell)
            if selected is not None and item.entry.key == selected.entry.key:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        self.folder_label.setText(str(snapshot.disk.models_dir))
        self.disk_label.setText(disk_text(snapshot))
        self._update_buttons()

    def set_current_model(self, path: str) -> None:
        """Mark the model that is loaded now (the window calls this when it changes)."""
        self.current_model = path
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    def selected_item(self) -> LibraryItem | None:
        """The model selected in the table."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or self.snapshot is None:
            return None
        cell = self.table.item(rows[0].row(), 0)
        return self.snapshot.find(cell.data(PATH_ROLE)) if cell is not None else None

    def select(self, name: str) -> bool:
        """Select the row of the model called ``name``; False when there is none."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text().removesuffix(" (in use)") == name:
                self.table.selectRow(row)
                return True
        return False

    @Slot()
    def use_selected(self) -> None:
        """Ask the window to load the selected model."""
        item = self.selected_item()
        if item is not None and not item.metadata.problem:
            self.model_chosen.emit(item.entry.key)

    def ask_markers(self) -> None:
        """Ask for the selected model's thinking markers (non-blocking dialog)."""
        item = self.selected_item()
        if item is None:
            return
        path = str(item.entry.path)
        self.markers_dialog = MarkersDialog(item.entry.name, self.service.settings.thinking_markers.get(path, []), self)
        self.markers_dialog.accepted.connect(lambda: self._markers_chosen(path))
        self.markers_dialog.open()

    def _markers_chosen(self, path: str) -> None:
        if self.markers_dialog is not None:
            self.thinking_markers_set.emit(path, self.markers_dialog.markers())
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)  # the Thinking column shows the markers now

    def _update_buttons(self) -> None:
        item = self.selected_item()
        idle = not self.service.task
        self.use_button.setEnabled(item is not None and not item.metadata.problem)
        self.markers_button.setEnabled(item is not None and not item.metadata.problem)
        plan = item.deletion if item is not None else None
        self.delete_button.setEnabled(idle and plan is not None and plan.action != REFUSE)
        self.delete_button.setText("Forget…" if plan is not None and plan.action not in (DELETE, REFUSE)
                                   else "Delete…")
        self.delete_button.setToolTip(plan.message if plan is not None and plan.action == REFUSE else "")
        for button in (self.copy_button, self.link_button, self.change_folder_button):
            button.setEnabled(idle)

    # -- import -----------------------------------------------------------------------------------
    @Slot()
    def ask_import(self, link: bool) -> None:
        """Let the person pick a .gguf file to copy in (or link)."""
        title = "Link a model file" if link else "Copy a model file into the library"
        dialog = QFileDialog(self, title, str(Path.home()), "GGUF models (*.gguf);;All files (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(lambda path: self.service.import_file(path, link=link))
        self.file_dialog = dialog
        dialog.open()

    # -- delete -----------------------------------------------------------------------------------
    @Slot()
    def ask_delete(self) -> None:
        """Confirm what deleting the selected model does, then do it."""
        item = self.selected_item()
        if item is None or item.deletion.action == REFUSE:
            return
        plan = item.deletion
        text = plan.message
        if item.entry.key == self.current_model:
            text += "\n\nIt is the model in use: the conversation keeps it until you choose another model."
        box = QMessageBox(QMessageBox.Icon.Warning if plan.action == DELETE else QMessageBox.Icon.Question,
                          "Delete model" if plan.action == DELETE else "Forget model", text,
                          QMessageBox.StandardButton.Cancel, self)
        confirm = box.addButton("Delete" if plan.action == DELETE else "Forget",
                                QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        key = item.entry.key
        box.buttonClicked.connect(lambda button: self.service.delete(key) if button is confirm else None)
        self.confirm_box = box
        box.open()

    # -- the models folder ------------------------------------------------------------------------
    @Slot()
    def ask_folder(self) -> None:
        """Let the person choose another models folder."""
        dialog = QFileDialog(self, "Choose the models folder", str(self.service.models_dir.parent))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(self.folder_chosen)
        self.folder_dialog = dialog
        dialog.open()

    @Slot(str)
    def folder_chosen(self, folder: str) -> None:
        """Offer to move the models in the current folder to ``folder``, then switch."""
        if not folder or Path(folder).absolute() == self.service.models_dir.absolute():
            return
        items = [i for i in (self.snapshot.items if self.snapshot else ()) if i.entry.source == "folder"]
        if not items:
            self.service.change_folder(folder, move=False)
            return
        size = format_size(sum(i.entry.size for i in items))
        box = QMessageBox(QMessageBox.Icon.Question, "Move the models?",
                          f"The current models folder holds {len(items)} model{'s' if len(items) != 1 else ''} "
                          f"({size}). Move them to {folder}?\n\nIf you do not move them they stay in "
                          f"{self.service.models_dir} and Cove no longer lists them.",
                          QMessageBox.StandardButton.Cancel, self)
        move = box.addButton("Move models", QMessageBox.ButtonRole.AcceptRole)
        leave = box.addButton("Switch without moving", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(move)

        def answered(button) -> None:  # noqa: ANN001 - a QAbstractButton
            if button is move or button is leave:
                self.service.change_folder(folder, move=button is move)
        box.buttonClicked.connect(answered)
        self.move_box = box
        box.open()

    # -- task feedback ----------------------------------------------------------------------------
    @Slot(str)
    def _on_busy(self, label: str) -> None:
        self.task_label.setText(label + "…")
        self.progress.setValue(0)
        self.message.clear()
        self._set_busy(True)

    @Slot(object, object)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setValue(int(1000 * done / total) if total else 0)
        self.progress.setFormat(f"{format_size(done)} of {format_size(total)}")

    @Slot(str)
    def _on_finished(self, message: str) -> None:
        self._set_busy(False)
        self.message.setText(message)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._set_busy(bool(self.service.task))
        self.message.setText(message)

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.task_label, self.progress, self.cancel_button):
            widget.setVisible(busy)
        self._update_buttons()
