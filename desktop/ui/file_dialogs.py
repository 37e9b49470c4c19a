"""The window's file dialogs, configured and not yet shown (the caller connects and opens them)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QWidget

MODEL_FILTERS = "GGUF models (*.gguf);;All files (*)"
EXPORT_FILTERS = "Markdown (*.md);;Cove JSON (*.json)"
IMPORT_FILTERS = "Exports (*.json *.zip);;All files (*)"


def file_dialog(parent: QWidget, title: str, filters: str, *, save: bool = False, default: str = "") -> QFileDialog:
    """A dialog choosing an existing file to open, or (``save``) a file to write, ``default`` suggested.
    It starts in the home folder; on offscreen and minimal platforms it is Qt's own dialog."""
    start = Path.home() / default if default else Path.home()
    dialog = QFileDialog(parent, title, str(start), filters)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave if save else QFileDialog.AcceptMode.AcceptOpen)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile if save else QFileDialog.FileMode.ExistingFile)
    if QGuiApplication.platformName() in ("offscreen", "minimal"):
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    return dialog


def model_file_dialog(parent: QWidget) -> QFileDialog:
    """Choose a .gguf file to load."""
    return file_dialog(parent, "Open a model file", MODEL_FILTERS)


def export_file_dialog(parent: QWidget, conversation_id: int) -> QFileDialog:
    """Choose where to export one conversation (or all of them for 0), as Markdown or Cove JSON."""
    if conversation_id:
        return file_dialog(parent, "Export conversation", EXPORT_FILTERS, save=True, default="cove-conversation.md")
    return file_dialog(parent, "Export all conversations", EXPORT_FILTERS, save=True, default="cove-conversations.md")


def import_file_dialog(parent: QWidget) -> QFileDialog:
    """Choose a Cove JSON export or a ChatGPT export (conversations.json or the .zip) to import."""
    return file_dialog(parent, "Import conversations", IMPORT_FILTERS)
