"""Thinking markers for one model: for a model whose chat template does not say how it thinks."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget


class MarkersDialog(QDialog):
    """Asks for the text that opens and closes the model's thinking (both empty: the template's own)."""

    def __init__(self, model_name: str, markers: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Thinking markers · {model_name}")
        self.open_marker = QLineEdit(markers[0] if len(markers) == 2 else "")
        self.open_marker.setPlaceholderText("e.g. <think>")
        self.close_marker = QLineEdit(markers[1] if len(markers) == 2 else "")
        self.close_marker.setPlaceholderText("e.g. </think>")
        explain = QLabel("If this model writes its thinking between markers its chat template does not "
                         "name, give them here: Cove then shows that text as thinking. Leave both empty "
                         "to go by the template.")
        explain.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(explain)
        form.addRow("Thinking starts with", self.open_marker)
        form.addRow("Thinking ends with", self.close_marker)
        form.addRow(buttons)

    def markers(self) -> list[str]:
        """[open, close] as typed; [] when both are empty (the template decides)."""
        pair = [self.open_marker.text().strip(), self.close_marker.text().strip()]
        return pair if any(pair) else []
