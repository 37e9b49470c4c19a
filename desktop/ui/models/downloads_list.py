"""The download queue as rows: name, progress bar, speed and time left, Pause/Resume/Cancel."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop.core.downloads.queue import CANCELLED, DONE, DOWNLOADING, FAILED, PAUSED, QUEUED, REMOVED, QueueItem
from desktop.core.text.units import format_duration, format_size


def describe(item: QueueItem) -> str:
    """The status text of one row."""
    size = f"{format_size(item.done)} of {format_size(item.total)}"
    if item.state == DOWNLOADING:
        if item.phase == "verifying":
            return f"Verifying the download (sha256)… {size}"
        if item.phase == "checking":
            return f"Connecting… {size}"
        speed = f"{size} · {format_size(item.bytes_per_s)}/s"
        eta = format_duration(item.eta_s)
        return f"{speed} · {eta} left" if eta else speed
    if item.state == QUEUED:
        return f"Waiting in the queue · {size}"
    if item.state == PAUSED:
        return f"Paused · {size} kept, Resume continues from there"
    if item.state == DONE:
        return f"Downloaded and verified · {format_size(item.total)} · in your library"
    if item.state == CANCELLED:
        return "Cancelled; the partial file was deleted"
    return f"Failed: {item.error}"


class DownloadRow(QWidget):
    """One item. Signals: pause(id), resume(id), cancel(id), use(id), dismiss(id)."""

    pause = Signal(str)
    resume = Signal(str)
    cancel = Signal(str)
    use = Signal(str)
    dismiss = Signal(str)

    def __init__(self, item: QueueItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item_id = item.id
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.use_button = QPushButton("Chat with it")
        self.dismiss_button = QPushButton("Remove from list")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.pause_button, self.resume_button, self.cancel_button, self.use_button,
                       self.dismiss_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addLayout(buttons)
        self.pause_button.clicked.connect(lambda: self.pause.emit(self.item_id))
        self.resume_button.clicked.connect(lambda: self.resume.emit(self.item_id))
        self.cancel_button.clicked.connect(lambda: self.cancel.emit(self.item_id))
        self.use_button.clicked.connect(lambda: self.use.emit(self.item_id))
        self.dismiss_button.clicked.connect(lambda: self.dismiss.emit(self.item_id))
        self.show_item(item)

    def show_item(self, item: QueueItem) -> None:
        """Show the item's latest state."""
        self.item = item
        parts = f" ({len(item.files)} parts)" if len(item.files) > 1 else ""
        self.title.setText(f"{item.label}{parts}")
        self.bar.setValue(int(1000 * item.done / item.total) if item.total else 0)
        self.bar.setFormat(f"{100 * item.done / item.total:.0f} %" if item.total else "")
        self.status.setText(describe(item))
        active = item.state in (QUEUED, DOWNLOADING)
        self.pause_button.setVisible(active)
        self.resume_button.setVisible(item.state in (PAUSED, FAILED))
        self.cancel_button.setVisible(item.state in (QUEUED, DOWNLOADING, PAUSED, FAILED))
        self.use_button.setVisible(item.state == DONE)
        self.dismiss_button.setVisible(item.state in (DONE, CANCELLED))


class DownloadsList(QWidget):
    """Every queued, running and finished download. Signals as :class:`DownloadRow`'s."""

    pause = Signal(str)
    resume = Signal(str)
    cancel = Signal(str)
    use = Signal(str)
    dismiss = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[str, DownloadRow] = {}
        self.empty = QLabel("No downloads yet. Choose a model above and press Download.")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.empty)
        self._layout.addStretch(1)

    def show_item(self, item: QueueItem) -> None:
        """Add or update the item's row (or remove it once forgotten)."""
        row = self.rows.get(item.id)
        if item.state == REMOVED:
            if row is not None:
                self.rows.pop(item.id)
                row.deleteLater()
        elif row is None:
            row = DownloadRow(item, self)
            for name in ("pause", "resume", "cancel", "use", "dismiss"):
                getattr(row, name).connect(getattr(self, name).emit)
            self.rows[item.id] = row
            self._layout.insertWidget(self._layout.count() - 1, row)
        else:
            row.show_item(item)
        self.empty.setVisible(not self.rows)
