"""Settings → Server: Cove's OpenAI-compatible API for other apps (editors, scripts, agents), over
the model the window has loaded. Off until switched on; on this computer only (127.0.0.1) unless
the person gives another address, which needs an API key. Changes apply at once."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.core.system.settings import ServerSettings
from desktop.services.server_service import ServerService

INTRO = ("Other apps on this computer (editors, scripts, agents) can use the model loaded in this window "
         "through an OpenAI-compatible API: point them at the URL below, with the model id it lists at "
         "<code>/v1/models</code>. Conversations they have are not stored in Cove.")
ERROR_STYLE = "color: #d13438;"


class ServerPanel(QWidget):
    """The Server tab: the switch, where it listens, its API key and allowed web origins, and its state."""

    def __init__(self, service: ServerService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        current = service.settings
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.enabled = QCheckBox("Serve the loaded model to other apps")
        self.enabled.setChecked(service.running)
        self.host = QLineEdit(current.host)
        self.host.setToolTip("127.0.0.1: this computer only. 0.0.0.0: every network this computer is on "
                             "(needs an API key)")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(current.port)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("none (leave empty to keep the stored key)")
        self.forget_key = QCheckBox("Forget the stored key")
        self.cors = QLineEdit(", ".join(current.cors_origins))
        self.cors.setPlaceholderText("none: web pages cannot call the API")
        self.apply_button = QPushButton("Apply")
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.activity = QLabel()
        form = QFormLayout()
        form.addRow("", self.enabled)
        form.addRow("Address", self.host)
        form.addRow("Port", self.port)
        form.addRow("API key", self.api_key)
        form.addRow("", self.forget_key)
        form.addRow("Web origins allowed", self.cors)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.state)
        layout.addWidget(self.activity)
        layout.addStretch(1)
        self.enabled.toggled.connect(lambda _on: self.apply())
        self.apply_button.clicked.connect(self.apply)
        service.state_changed.connect(self._on_state)
        service.activity.connect(self.activity.setText)
        self._on_state(service.running, service.url or "The API server is off.")

    def values(self) -> ServerSettings:
        """The settings as the panel shows them."""
        origins = [o.strip() for o in self.cors.text().split(",") if o.strip()]
        return ServerSettings(self.enabled.isChecked(), self.host.text().strip() or "127.0.0.1", self.port.value(),
                              origins)

    def apply(self) -> None:
        """Start, restart or stop the server as the panel says."""
        values = self.values()
        key = "" if self.forget_key.isChecked() else (self.api_key.text().strip() or None)
        self.state.setStyleSheet("")
        self.state.setText("Starting…" if values.enabled else "Stopping…")
        self._service.apply(values, key)
        self.api_key.clear()
        self.forget_key.setChecked(False)

    def _on_state(self, running: bool, text: str) -> None:
        problem = not running and self.enabled.isChecked() and "off" not in text
        self.state.setStyleSheet(ERROR_STYLE if problem else "")
        self.state.setText(f"Running at <b>{text}</b>" if running else text)
        if not running and problem:
            self.enabled.blockSignals(True)
            self.enabled.setChecked(False)
            self.enabled.blockSignals(False)


class ServerIndicator(QLabel):
    """The status line's note that the API server runs, and whom it serves now (hidden when off)."""

    def __init__(self, service: ServerService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._url = ""
        self.setVisible(False)
        service.state_changed.connect(self._on_state)
        service.activity.connect(self._on_activity)

    def _on_state(self, running: bool, text: str) -> None:
        self._url = text if running else ""
        self.setVisible(running)
        self._on_activity("")

    def _on_activity(self, text: str) -> None:
        self.setText(f"API on {self._url.removeprefix('http://')}" + (f" · {text}" if text else " · idle"))
        self.setToolTip("Cove's OpenAI-compatible API server is on (Settings → Server)")
