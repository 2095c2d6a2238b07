"""Thread-safe posting to the Qt main thread.

`CaptionBridge` is created on the Qt main thread. Any thread (recognizer worker, controller,
hotkey listener) calls `post_caption`, `post_note` or `post_state`; the signals are delivered
by queued connection, so the connected slots always run on the main thread.

    bridge = CaptionBridge()
    bridge.attach_overlay(overlay)           # captions and notes → CaptionOverlay
    bridge.attach_state(tray.set_state)      # optional: StateChanged → Tray
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from subtone.service.events import Caption, StateChanged


class CaptionBridge(QObject):
    caption_posted = Signal(object)
    """Carries a Caption."""
    note_posted = Signal(str)
    """Carries the overlay's legend note ("" clears it)."""
    state_posted = Signal(object)
    """Carries a StateChanged (for the tray)."""
    banner_posted = Signal(str)
    """Carries the overlay's banner text."""

    def post_caption(self, caption: Caption) -> None:
        self.caption_posted.emit(caption)

    def post_note(self, text: str) -> None:
        self.note_posted.emit(text)

    def post_state(self, event: StateChanged) -> None:
        self.state_posted.emit(event)

    def post_banner(self, text: str) -> None:
        self.banner_posted.emit(text)

    def attach_overlay(self, overlay) -> None:
        """Connect to a CaptionOverlay (queued: slots run on the overlay's thread)."""
        self.caption_posted.connect(overlay.show_caption, Qt.ConnectionType.QueuedConnection)
        self.note_posted.connect(overlay.set_legend_note, Qt.ConnectionType.QueuedConnection)
        self.banner_posted.connect(overlay.show_banner, Qt.ConnectionType.QueuedConnection)

    def attach_state(self, callback) -> None:
        """Connect a plain callable (e.g. Tray.set_state); queued, so it runs on the bridge's thread."""
        self.state_posted.connect(callback, Qt.ConnectionType.QueuedConnection)
