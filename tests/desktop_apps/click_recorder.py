"""A plain window that records mouse clicks, run as its own process under the test display.

Usage: python click_recorder.py OUT_FILE R,G,B
Fills the screen with one color, writes "ready <window id>" to OUT_FILE once mapped, then
"click <x> <y>" (global coordinates) for every mouse press.
"""

import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget


class Recorder(QWidget):
    def __init__(self, out: str, color: QColor) -> None:
        super().__init__()
        self._out = out
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, color)
        self.setPalette(palette)
        self.setAutoFillBackground(True)
        self.setWindowTitle("click recorder")

    def _write(self, line: str) -> None:
        with open(self._out, "a") as fh:
            fh.write(line + "\n")

    def announce(self) -> None:
        self._write(f"ready {int(self.winId())}")

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.globalPosition().toPoint()
        self._write(f"click {pos.x()} {pos.y()}")


def main() -> None:
    out, rgb = sys.argv[1], sys.argv[2]
    app = QApplication(sys.argv[:1])
    window = Recorder(out, QColor(*(int(c) for c in rgb.split(","))))
    window.setGeometry(app.primaryScreen().geometry())
    window.show()
    QTimer.singleShot(300, window.announce)
    app.exec()


if __name__ == "__main__":
    main()
