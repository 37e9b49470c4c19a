"""The download pane: recommended models first, a Hub search, a repository's files with fit
verdicts, and the download queue.

Nothing in this pane reaches the network by itself: the catalog is a local file, and the Hub is
asked only when the person searches or opens a repository.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core.text.units import format_size
from desktop.services.download_service import DownloadService
from desktop.services.hub_service import FileVerdict, HubService
from desktop.services.secrets_service import SecretsService
from desktop.ui.models.downloads_list import DownloadsList

SORTS = (("Most downloaded", "downloads"), ("Most liked", "likes"), ("Recently updated", "recent"))
OFFLINE_TEXT = ("You are offline: Cove cannot reach the Hugging Face Hub. Your models and conversations "
                "work as before; search and downloads need a connection.")
VERDICT_COLOURS = {"runs well": "#1b7f3b", "tight": "#a15c00", "will not fit": "#b3261e"}
REPO_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Model file", "Quantization", "Size", "Fit on this computer", "")


class DownloadPane(QWidget):
    """Signals: use_model(str path) when the person wants to chat with a downloaded model."""

    use_model = Signal(str)

    def __init__(self, hub: HubService, downloads: DownloadService, secrets: SecretsService,
                 catalog: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.downloads = downloads
        self.secrets = secrets
        self.catalog = catalog
        self.details: Any = None
        self.choices: list[Any] = []
        self._page = 0
        self._query = ""
        self._retry: Any = None
        self._token_saved = False  # retry once after the person saves a token, never on a mere check
        self._pending = ""  # what the last Hub request was for: "search" or "repo"
        self._build()
        self._connect()
        self.show_catalog()
        self.secrets.check()  # whether a token is stored (off the GUI thread)

    # -- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("QLabel { background: #fff4e5; color: #5f3b00; padding: 8px; border-radius: 4px; }")
        self.notice.hide()
        browse = QSplitter()
        browse.addWidget(self._build_results())
        browse.addWidget(self._build_files())
        browse.setStretchFactor(1, 2)
        browse.setSizes([320, 640])
        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addLayout(self._build_search_row())
        layout.addWidget(browse, 3)
        layout.addWidget(self._build_queue(), 1)

    def _build_search_row(self) -> QHBoxLayout:
        """The search box, the sort order and the search button."""
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search the Hugging Face Hub for GGUF models (e.g. qwen, llama, phi)")
        self.search_box.setClearButtonEnabled(True)
        self.sort_box = QComboBox()
        for text, key in SORTS:
            self.sort_box.addItem(text, key)
        self.search_button = QPushButton("Search")
        search_row = QHBoxLayout()
        search_row.addWidget(self.search_box, 1)
        search_row.addWidget(self.sort_box)
        search_row.addWidget(self.search_button)
        return search_row

    def _build_results(self) -> QWidget:
        """The left side: the recommended models or the search results, with paging."""
        self.results_title = QLabel()
        self.results_title.setStyleSheet("font-weight: 600;")
        self.results = QListWidget()
        self.results.setWordWrap(True)
        self.results.setSpacing(3)
        self.results.setAlternatingRowColors(True)
        self.more_button = QPushButton("More results")
        self.more_button.hide()
        self.back_button = QPushButton("Recommended models")
        self.back_button.hide()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.results_title)
        left_layout.addWidget(self.results, 1)
        more_row = QHBoxLayout()
        more_row.addWidget(self.back_button)
        more_row.addStretch(1)
        more_row.addWidget(self.more_button)
        left_layout.addLayout(more_row)
        return left

    def _build_files(self) -> QWidget:
        """The right side: the chosen repository, its files with their fit verdicts, the token box."""
        self.repo_title = QLabel("Choose a model on the left to see its files.")
        self.repo_title.setWordWrap(True)
        self.repo_title.setTextFormat(Qt.TextFormat.RichText)
        self.files = QTableWidget(0, len(COLUMNS))
        self.files.setHorizontalHeaderLabels(COLUMNS)
        header = self.files.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.files.verticalHeader().hide()
        self.files.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.files.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.files.setWordWrap(True)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.repo_title)
        right_layout.addWidget(self.files, 1)
        right_layout.addWidget(self._build_token_box())
        return right

    def _build_token_box(self) -> QGroupBox:
        """Where the person gives a Hugging Face token (hidden until one is needed)."""
        self.token_box = QGroupBox("A Hugging Face token is needed")
        self.token_text = QLabel()
        self.token_text.setWordWrap(True)
        self.token_field = QLineEdit()
        self.token_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_field.setPlaceholderText("hf_…")
        self.token_save = QPushButton("Use token")
        self.token_status = QLabel()
        self.token_status.setWordWrap(True)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_field, 1)
        token_row.addWidget(self.token_save)
        token_layout = QVBoxLayout(self.token_box)
        token_layout.addWidget(self.token_text)
        token_layout.addLayout(token_row)
        token_layout.addWidget(self.token_status)
        self.token_box.hide()
        return self.token_box

    def _build_queue(self) -> QGroupBox:
        """The download queue, scrolling."""
        self.queue_view = DownloadsList()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.queue_view)
        scroll.setMinimumHeight(150)
        queue_box = QGroupBox("Downloads")
        queue_layout = QVBoxLayout(queue_box)
        queue_layout.addWidget(scroll)
        return queue_box

    def _connect(self) -> None:
        self.search_box.returnPressed.connect(self.search)
        self.search_button.clicked.connect(self.search)
        self.sort_box.activated.connect(lambda _i: self._query and self.search())
        self.more_button.clicked.connect(self.more)
        self.back_button.clicked.connect(self.show_catalog)
        self.results.itemActivated.connect(self._open_item)
        self.results.itemClicked.connect(self._open_item)
        self.token_save.clicked.connect(self._save_token)
        self.token_field.returnPressed.connect(self._save_token)
        self.hub.search_finished.connect(self._on_search)
        self.hub.repo_loaded.connect(self._on_repo)
        self.hub.verdict_ready.connect(self._on_verdict)
        self.hub.failed.connect(self._on_failed)
        self.secrets.status.connect(self._on_token_status)
        q = self.queue_view
        q.pause.connect(self.downloads.pause)
        q.resume.connect(self.downloads.resume)
        q.cancel.connect(self.downloads.cancel)
        q.dismiss.connect(self.downloads.forget)
        q.use.connect(self._use)
        self.downloads.item_changed.connect(self._on_item)

    # -- discover ------------------------------------------------------------------------------------
    def show_catalog(self) -> None:
        """The curated list (a local file: no network)."""
        self._query = ""
        self.results.clear()
        self.results_title.setText("Recommended for laptops")
        for entry in self.catalog:
            text = (f"{entry.repo_id}\n{entry.description}\n"
                    f"{format_size(entry.size)} · {entry.license} · {entry.params}")
            item = QListWidgetItem(text)
            item.setData(REPO_ROLE, entry.repo_id)
            item.setToolTip(f"Recommended file: {entry.file}")
            self.results.addItem(item)
        self.more_button.hide()
        self.back_button.hide()

    def show_downloads(self) -> None:
        """List the downloads an earlier run left unfinished (reads the local state file only)."""
        self.downloads.start()

    def search(self) -> None:
        """Search the Hub for the text in the search box (first page)."""
        query = self.search_box.text().strip()
        if not query:
            self.show_catalog()
            return
        self._query, self._page = query, 0
        self.results.clear()
        self.results_title.setText(f"Searching the Hub for “{query}”…")
        self.more_button.hide()
        self.back_button.show()
        self._retry = self.search
        self._pending = "search"
        self.hub.search(query, self.sort_box.currentData(), 0)

    def more(self) -> None:
        """The next page of the current search."""
        self._page += 1
        self.more_button.setEnabled(False)
        self.hub.search(self._query, self.sort_box.currentData(), self._page)

    def _on_search(self, results: list[Any], page: int, query: str) -> None:
        if query != self._query:
            return
        self.notice.hide()
        if page == 0:
            self.results.clear()
        for repo in results:
            gated = " · gated (token needed)" if repo.gated else ""
            item = QListWidgetItem(f"{repo.repo_id}\n{repo.downloads:,} downloads · {repo.likes:,} likes"
                                   f"{' · ' + repo.license if repo.license else ''}{gated}")
            item.setData(REPO_ROLE, repo.repo_id)
            self.results.addItem(item)
        count = self.results.count()
        self.results_title.setText(f"{count} GGUF repositories for “{query}”" if count else
                                   f"No GGUF repositories found for “{query}”.")
        self.more_button.setEnabled(True)
        self.more_button.setVisible(bool(results))

    def _open_item(self, item: QListWidgetItem) -> None:
        repo_id = item.data(REPO_ROLE)
        if repo_id and (self.details is None or self.details.repo_id != repo_id or not self.choices):
            self.open_repo(repo_id)

    def open_repo(self, repo_id: str) -> None:
        """Show a repository's GGUF files (asks the Hub)."""
        self.details, self.choices = None, []
        self.files.setRowCount(0)
        self.repo_title.setText(f"<b>{repo_id}</b><br>Reading the list of files…")
        self._retry = lambda: self.open_repo(repo_id)
        self._pending = "repo"
        self.hub.load_repo(repo_id)

    def _on_repo(self, details: Any, choices: list[Any]) -> None:
        self.notice.hide()
        self.token_box.hide()
        self.details, self.choices = details, list(choices)
        gated = "yes: accept its terms on huggingface.co, then give Cove a token" if details.gated else "no"
        rejected = (f"<br><span style='color:#b3261e'>{len(details.rejected)} file name(s) in this repository "
                    "were refused as unsafe and are not shown.</span>" if details.rejected else "")
        self.repo_title.setText(f"<b>{details.repo_id}</b><br>License: {details.license or 'not stated'} · "
                                f"Gated: {gated}{rejected}")
        self.files.setRowCount(len(self.choices))
        recommended = {e.file for e in self.catalog if e.repo_id == details.repo_id}
        for row, choice in enumerate(self.choices):
            parts = f" ({len(choice.parts)} parts)" if len(choice.parts) > 1 else ""
            star = " ★ recommended" if choice.name in recommended else ""
            self.files.setItem(row, 0, QTableWidgetItem(choice.name + parts + star))
            self.files.setItem(row, 1, QTableWidgetItem(choice.quant or "?"))
            self.files.setItem(row, 2, QTableWidgetItem(format_size(choice.size)))
            self.files.setItem(row, 3, QTableWidgetItem("checking…"))
            button = QPushButton("Download")
            button.clicked.connect(lambda _checked=False, c=choice: self.download(c))
            self.files.setCellWidget(row, 4, button)
        if not self.choices:
            self.repo_title.setText(self.repo_title.text() + "<br>This repository has no GGUF files.")
        if details.gated and not self.secrets.token_present:
            self._retry = lambda: self.open_repo(details.repo_id)
            self._ask_token(f"{details.repo_id} is gated: accept its terms on huggingface.co with your account, "
                            "then paste an access token (huggingface.co/settings/tokens) here to download it.")

    def _on_verdict(self, verdict: FileVerdict) -> None:
        if self.details is None or verdict.repo_id != self.details.repo_id:
            return
        for row, choice in enumerate(self.choices):
            if choice.name == verdict.name:
                cell = QTableWidgetItem(verdict.label)
                cell.setToolTip(verdict.reason)
                cell.setForeground(_colour(verdict.label))
                self.files.setItem(row, 3, cell)

    def verdict_text(self, name: str) -> str:
        """The fit verdict shown for a model file (tests and accessibility)."""
        for row, choice in enumerate(self.choices):
            if choice.name == name:
                cell = self.files.item(row, 3)
                return cell.text() if cell else ""
        return ""

    # -- download ------------------------------------------------------------------------------------
    def download(self, choice: Any) -> None:
        """Queue one model (all its parts)."""
        self.downloads.add(choice.parts, f"{self.details.repo_id if self.details else ''} · {choice.name}")

    def _on_item(self, item: Any) -> None:
        self.queue_view.show_item(item)
        if item.state == "failed" and item.error_kind == "auth":
            self._retry = lambda: self.downloads.resume(item.id)
            self._on_failed("auth", item.error)

    def _use(self, item_id: str) -> None:
        item = self.downloads.items.get(item_id)
        if item is not None and item.paths:
            self.use_model.emit(item.paths[0])

    # -- problems and tokens -----------------------------------------------------------------------
    def _on_failed(self, kind: str, message: str) -> None:
        if kind == "auth":
            self._ask_token(message)
            return
        self.notice.setText(OFFLINE_TEXT if kind == "offline" else message)
        self.notice.show()
        if self._pending == "search" and self.results.count() == 0:
            self.results_title.setText("The search did not complete.")
        elif self._pending == "repo" and self.details is None:
            self.repo_title.setText("The list of files could not be read.")

    def _ask_token(self, message: str) -> None:
        self.token_text.setText(message)
        self.token_box.show()
        self.token_field.setFocus()
        self.secrets.check()

    def _save_token(self) -> None:
        token = self.token_field.text().strip()
        if not token:
            return
        self.token_field.clear()
        self.token_status.setText("Saving the token…")
        self._token_saved = True
        self.secrets.save_token(token)

    def _on_token_status(self, present: bool, where: str) -> None:
        self.token_status.setText(f"Token {where}." if present else f"No token saved ({where}).")
        if present and self._token_saved and self.token_box.isVisible() and self._retry is not None:
            self._token_saved = False
            self.token_box.hide()
            self._retry()


def _colour(label: str) -> QColor:
    return QColor(VERDICT_COLOURS.get(label, "#444444"))
