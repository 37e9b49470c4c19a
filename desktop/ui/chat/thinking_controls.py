"""The *Think* control and the *Answer now* button, beside the composer, for models that think.

The control offers what the loaded model's template allows: on and off, or its effort levels; for a
model that cannot stop thinking it says so instead of offering a switch that would do nothing.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QPushButton, QVBoxLayout, QWidget

AUTO, ON, OFF = "auto", "on", "off"


class ThinkingControls(QWidget):
    """Signals: choice_changed(str think, str effort) when the person picks; answer_now() on the button."""

    choice_changed = Signal(str, str)
    answer_now = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.think = QComboBox(self)
        self.think.setToolTip("Whether this model thinks before it answers, in this conversation")
        self.think.activated.connect(self._picked)
        self.answer_now_button = QPushButton("Answer now", self)
        self.answer_now_button.setToolTip("Stop thinking and write the answer")
        self.answer_now_button.clicked.connect(self.answer_now)
        self.answer_now_button.hide()
        layout.addWidget(self.think)
        layout.addWidget(self.answer_now_button)
        self._format: dict = {}

    def set_model(self, thinking: dict, think: str, effort: str) -> None:
        """Offer what the loaded model allows (``thinking``: the runtime's format as a dict) and show
        the conversation's choice; hidden for models that do not think."""
        self._format = thinking or {}
        self.think.blockSignals(True)
        self.think.clear()
        if not self._format.get("thinks"):
            self.setVisible(False)
            self.think.blockSignals(False)
            return
        efforts = self._format.get("efforts") or []
        if efforts:
            for level in efforts:
                self.think.addItem(f"Think: {level}", (ON, level))
        elif self._format.get("can_switch_off"):
            default = "on" if self._format.get("default_on", True) else "off"
            self.think.addItem(f"Think: model default ({default})", (AUTO, ""))
            self.think.addItem("Think: on", (ON, ""))
            self.think.addItem("Think: off", (OFF, ""))
        else:
            self.think.addItem("Thinks (always)", (AUTO, ""))
            self.think.setToolTip("This model always thinks before answering: its template has no switch")
        self.think.setEnabled(self.think.count() > 1)
        wanted = (think, effort if efforts else "")
        index = next((i for i in range(self.think.count()) if self.think.itemData(i) == wanted), 0)
        if efforts and not effort:
            index = next((i for i in range(self.think.count()) if self.think.itemData(i)[1] == "medium"), 0)
        self.think.setCurrentIndex(index)
        self.think.blockSignals(False)
        self.setVisible(True)

    def set_thinking(self, thinking: bool) -> None:
        """Offer *Answer now* while the model thinks."""
        self.answer_now_button.setVisible(thinking and self.isVisible())

    def _picked(self, index: int) -> None:
        think, effort = self.think.itemData(index)
        self.choice_changed.emit(think, effort)
