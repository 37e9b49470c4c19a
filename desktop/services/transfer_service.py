"""Export and import of conversations from the window, on the store thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from desktop.core.conversations.export_import import ImportFormatError, ImportResult, import_file, write_export
from desktop.core.conversations.store import Store
from desktop.services.store_service import StoreService, describe_failure


def format_for(path: Path, chosen_filter: str = "") -> str:
    """'md' or 'json' from the file name (else the file dialog's filter)."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "md"
    if suffix == ".json":
        return "json"
    return "md" if "Markdown" in chosen_filter else "json"


class TransferService(QObject):
    """Signals:
        done(str): a sentence saying what was exported or imported
        failed(str): why it could not be done (nothing was imported half-way)
        imported(object ImportResult): conversations were added
    """

    done = Signal(str)
    failed = Signal(str)
    imported = Signal(object)

    def __init__(self, store: StoreService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store

    def export(self, path: Path, fmt: str, conversation_ids: list[int] | None = None) -> None:
        """Write one conversation (``[id]``) or all of them (None) to ``path`` as 'md' or 'json'."""
        def job(store: Store) -> int:
            return write_export(store, path, fmt, conversation_ids)

        def finished(count: int) -> None:
            what = "1 conversation" if count == 1 else f"{count} conversations"
            self.done.emit(f"Exported {what} to {path}.")

        self._store.submit(job, finished, lambda exc: self.failed.emit(f"The export failed: {describe_failure(exc)}"))

    def import_from(self, path: Path) -> None:
        """Import a Cove JSON export or a ChatGPT conversations.json / export .zip."""
        def job(store: Store) -> ImportResult | str:
            try:
                return import_file(store, path)
            except ImportFormatError as exc:
                return str(exc)

        def finished(result: ImportResult | str) -> None:
            if isinstance(result, str):
                self.failed.emit(result)
                return
            source = "ChatGPT" if result.source == "chatgpt" else "Cove"
            skipped = f" ({result.skipped} non-text messages left out)" if result.skipped else ""
            self.done.emit(f"Imported {result.conversations} conversations with {result.messages} messages "
                           f"from a {source} export{skipped}.")
            self.imported.emit(result)

        self._store.submit(job, finished, lambda exc: self.failed.emit(f"The import failed: {describe_failure(exc)}"))
