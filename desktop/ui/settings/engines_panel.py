"""Settings → Engines: OpenAI-compatible engines on other computers (vLLM, llama-server, Ollama,
another Cove) whose models appear in the model picker, marked with their engine. Conversations
with them stay on this computer; only the conversation being answered goes to its engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.services.engine_service import EngineService

if TYPE_CHECKING:
    from desktop.core.remote.remote_models import EngineListing

INTRO = ("When one laptop is not enough, a team runs a bigger model on its own server (vLLM, llama.cpp's "
         "llama-server, Ollama, or another Cove's <code>cove serve</code>). Add it here: its models appear in "
         "the model picker, marked with the engine's name. Your conversations stay on this computer; only the "
         "one being answered is sent, to that engine alone.")
ERROR_STYLE = "color: #d13438;"


class EnginesPanel(QWidget):
    """The Engines tab: the list of engines with their models or problem, and the Add form."""

    def __init__(self, service: EngineService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Engine", "Address", "Models"])
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.tree.setRootIsDecorated(False)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setEnabled(False)
        self.refresh_button = QPushButton("Refresh")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self._build_add())
        self.tree.itemSelectionChanged.connect(lambda: self.remove_button.setEnabled(bool(self.tree.selectedItems())))
        self.remove_button.clicked.connect(self._remove)
        self.refresh_button.clicked.connect(service.refresh)
        service.listed.connect(self.show_listings)
        service.add_failed.connect(self._on_add_failed)
        service.added.connect(self._on_added)
        self.show_listings(service.listings)

    def _build_add(self) -> QGroupBox:
        box = QGroupBox("Add an engine")
        self.name = QLineEdit()
        self.name.setPlaceholderText("team")
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://gpu.example.org:8000/v1")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("optional; kept in the system keyring")
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("optional: the CA certificate of a private TLS authority (PEM)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(browse)
        self.add_button = QPushButton("Add")
        self.add_state = QLabel()
        self.add_state.setWordWrap(True)
        self.add_state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout(box)
        form.addRow("Name", self.name)
        form.addRow("Base URL", self.url)
        form.addRow("API key", self.api_key)
        form.addRow("CA file", ca_row)
        form.addRow("", self.add_button)
        form.addRow("", self.add_state)
        self.add_button.clicked.connect(self._add)
        return box

    def show_listings(self, listings: list[EngineListing]) -> None:
        """One row per engine: its name, address, and its models or what went wrong."""
        self.tree.clear()
        for listing in listings:
            models = ", ".join(m.name.rsplit(" · ", 1)[0] for m in listing.models) or "none"
            item = QTreeWidgetItem([listing.engine.name, listing.engine.url, listing.error or models])
            item.setData(0, Qt.ItemDataRole.UserRole, listing.engine.name)
            item.setToolTip(2, listing.error or models)
            if listing.error:
                item.setForeground(2, Qt.GlobalColor.red)
            self.tree.addTopLevelItem(item)

    def _add(self) -> None:
        self.add_button.setEnabled(False)
        self.add_state.setStyleSheet("")
        self.add_state.setText(f"Asking {self.url.text().strip() or 'the engine'} for its models…")
        self._service.add(self.name.text(), self.url.text(), self.api_key.text(), self.ca_file.text())

    def _on_add_failed(self, message: str) -> None:
        self.add_button.setEnabled(True)
        self.add_state.setStyleSheet(ERROR_STYLE)
        self.add_state.setText(message)

    def _on_added(self, name: str) -> None:
        self.add_button.setEnabled(True)
        self.add_state.setText(f"Added '{name}': pick its models in the model picker.")
        for field in (self.name, self.url, self.api_key, self.ca_file):
            field.clear()

    def _remove(self) -> None:
        for item in self.tree.selectedItems():
            self._service.remove(str(item.data(0, Qt.ItemDataRole.UserRole)))

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA certificate", "", "Certificates (*.pem *.crt *.cer);;All (*)")
        if path:
            self.ca_file.setText(path)
