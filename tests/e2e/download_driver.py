"""Run the real Cove window (offscreen) and start one download through its widgets, then keep
running until killed. Used by test_app_download_kill.py: ``python download_driver.py BASEDIR REPO FILE``.

Prints ``downloading N`` lines (bytes done) on standard output as the queue reports progress.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from desktop.app import CoveApp
from desktop.core.system.paths import app_paths


def main() -> None:
    basedir, repo_id, filename = sys.argv[1:4]
    qt = QApplication([])
    cove = CoveApp(app_paths(basedir), safe_mode=True)
    cove.start()
    dialog = cove.window.open_models_dialog()
    pane = dialog.download_pane

    def on_repo(_details: object, choices: list) -> None:
        row = next(i for i, c in enumerate(choices) if c.name == filename)
        pane.files.cellWidget(row, 4).click()  # the Download button

    pane.hub.repo_loaded.connect(on_repo)
    pane.downloads.item_changed.connect(lambda item: print(f"{item.state} {item.done}", flush=True))
    QTimer.singleShot(0, lambda: pane.open_repo(repo_id))
    qt.exec()


if __name__ == "__main__":
    main()
