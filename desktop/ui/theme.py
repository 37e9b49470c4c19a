"""Light and dark follow the system's colour scheme."""

from __future__ import annotations

from importlib.resources import files

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from desktop.core.text.markdown import DARK, LIGHT, Theme


def system_is_dark() -> bool:
    """True when the desktop asks for dark colours."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def current_theme() -> Theme:
    """The message theme matching the system."""
    return DARK if system_is_dark() else LIGHT


def apply_palette(app: QApplication) -> None:
    """Fusion style with a palette that matches the system's light or dark scheme."""
    app.setStyle("Fusion")
    if not system_is_dark():
        app.setPalette(app.style().standardPalette())
        return
    p = QPalette()
    base, window, text = QColor("#1b1c20"), QColor("#25262b"), QColor("#e6e6ea")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, window)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.ToolTipBase, window)
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8a8a96"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#3d6fd6"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Link, QColor("#7aa7ff"))
    app.setPalette(p)


def app_icon() -> QIcon:
    """Cove's icon, from the packaged resources."""
    return QIcon(str(files("desktop.resources") / "cove.svg"))
