"""A short notice on screen for a process that is about to exit, e.g. a second `subtone run`:
people start subtone from a menu and never see its stderr.

    show_notice(settings.overlay, "subtone is already running: use its tray icon", seconds=4.0)

Drawn as the caption overlay's banner (same place, look and contrast), so it reads like subtone
talking; it takes no focus and lets clicks through. Returns when the notice is gone.
"""

from __future__ import annotations

import os

from subtone.config.settings import OverlaySettings

NOTICE_SECONDS = 4.0


def show_notice(settings: OverlaySettings, text: str, seconds: float = NOTICE_SECONDS) -> None:
    """Show `text` for `seconds` (runs Qt's event loop that long). Needs a display."""
    os.environ.setdefault("NO_AT_BRIDGE", "1")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from subtone.overlay.window import CaptionOverlay

    app = QApplication.instance() or QApplication(["subtone"])
    overlay = CaptionOverlay(settings)
    overlay.show_banner(text, seconds)
    QTimer.singleShot(round(seconds * 1000), app.quit)
    app.exec()
    overlay.close()
