"""Render Cove's SVG icon to a PNG with Qt (no other image tool needed): used by build.spec and the
installer scripts for platforms that want a bitmap icon (Windows .ico and macOS .icns are made from
it by PyInstaller with Pillow; Linux menus get it as a hicolor 256x256 fallback next to the SVG).

    python installers/render_icon.py resources/cove.svg build/icons/cove-256.png 256
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def render(svg: Path, png: Path, size: int = 256) -> Path:
    """Draw ``svg`` into a ``size`` x ``size`` transparent PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - painting wants one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icon: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    png.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(png), "PNG"):
        raise SystemExit(f"render_icon: could not write {png}")
    return png


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    render(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else 256)
