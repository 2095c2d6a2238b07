"""The "Recent captions" window: an ordinary window (focusable, scrollable, closable) listing the
finished captions of the last few minutes, newest at the bottom.

Unlike the caption overlay it takes the focus when opened, so it can be scrolled, searched with the
keyboard and copied from; Esc or the window's close button hides it. While shown it polls its
source (`snapshot() -> (version, entries)`, e.g. service/app/recent.RecentCaptions) and redraws
when the version changes; it follows new captions at the bottom unless the reader scrolled up.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol, Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

POLL_MS = 300
TITLE = "subtone: recent captions"


class CaptionSource(Protocol):
    def snapshot(self) -> tuple[int, Sequence[object]]: ...


class RecentCaptionsWindow(QWidget):
    def __init__(self, source: CaptionSource, line: Callable[[object], str], font_family: str = "",
                 minutes: float = 10.0) -> None:
        super().__init__(None)
        self._source = source
        self._line = line
        self._version: int | None = None
        self.setWindowTitle(TITLE)
        self.resize(760, 420)
        self._text = QPlainTextEdit(self)
        self._text.setReadOnly(True)
        self._text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self._text.setPlaceholderText(f"No captions in the last {minutes:g} minutes.")
        font = QFont(font_family) if font_family else QFont()
        font.setPointSize(13)
        self._text.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._text)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.close)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.refresh)

    # ----- public -----

    def open(self) -> None:
        """Show (or bring back to the front) with the latest captions; the window takes the focus."""
        self.refresh()
        self.show()
        self.raise_()
        self.activateWindow()
        self._timer.start()
        self._scroll_to_end()

    def toggle(self) -> None:
        """The hotkey: open when hidden, close when shown."""
        if self.isVisible():
            self.close()
        else:
            self.open()

    def text(self) -> str:
        """What the window lists now, one caption per line (tests, logs)."""
        return self._text.toPlainText()

    def at_end(self) -> bool:
        bar = self._text.verticalScrollBar()
        return bar.value() >= bar.maximum()

    def refresh(self) -> None:
        version, entries = self._source.snapshot()
        if version == self._version:
            return
        self._version = version
        follow = self.at_end()  # a reader who scrolled up to read is not pulled down
        bar = self._text.verticalScrollBar()
        kept = bar.value()
        self._text.setPlainText("\n".join(self._line(entry) for entry in entries))
        if follow:
            self._scroll_to_end()
        else:
            bar.setValue(min(kept, bar.maximum()))

    # ----- Qt -----

    def _scroll_to_end(self) -> None:
        bar = self._text.verticalScrollBar()
        bar.setValue(bar.maximum())

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self._timer.stop()
        super().closeEvent(event)
