"""The Models window: download models from the Hub, and manage the ones on this computer."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QTabWidget, QVBoxLayout, QWidget

from desktop.ui.models.download_pane import DownloadPane
from desktop.ui.models.library_pane import LibraryPane

DOWNLOAD_TAB, LIBRARY_TAB = "Download", "Library"


class ModelsDialog(QDialog):
    """A non-modal window with the download pane and the library.

    Signals: use_model(str path): the person chose a model to chat with.
    """

    use_model = Signal(str)

    def __init__(self, download_pane: DownloadPane, library_pane: LibraryPane | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(1000, 720)
        self.download_pane = download_pane
        self.library_pane = library_pane
        self.tabs = QTabWidget()
        self.tabs.addTab(download_pane, DOWNLOAD_TAB)
        if library_pane is not None:
            self.tabs.addTab(library_pane, LIBRARY_TAB)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        download_pane.use_model.connect(self.use_model.emit)
        if library_pane is not None:
            library_pane.model_chosen.connect(self.use_model.emit)

    def show_tab(self, name: str) -> None:
        """Bring a tab to the front."""
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index) == name:
                self.tabs.setCurrentIndex(index)
