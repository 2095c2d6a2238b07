"""The caption overlay: a frameless, translucent, always-on-top, click-through window.

`CaptionOverlay(settings)` lives on the Qt main thread; other threads post to it through
`subtone.overlay.bridge.CaptionBridge`. Public surface:

- `show_caption(caption: Caption)`: create or update the line for `caption.utterance_id`.
  A partial (`is_final` False) is drawn in italics with a trailing "…" and is replaced in
  place by later partials and by the final; its settled words (`stable_text`, which will not
  change) are drawn upright like a final, so only the tentative tail looks provisional; a final with empty text removes the line
  (the recognizer heard no words). Each line starts with the emotion's glyph and label,
  in the emotion's color (see palette.py), so the emotion never rests on color alone. An
  uncertain emotion (`emotion_uncertain`) keeps its glyph and word as a guess ("angry?") in a
  neutral grey, with no emotion color; a `strong` one's text is drawn bold (label and glyph as ever).
- `set_legend_note(text)`: a small line above the captions, e.g. "emotion off: no emotion
  model"; "" removes it. It is shown only while captions are.
- `shown_captions() -> list[Caption]`: what is on screen now, oldest first (tests, e2e checks).
- `caption_rect() -> QRect`: the backdrop box in global screen coordinates (empty when hidden).

Window behaviour (measured on Xvfb + openbox + xcompmgr, see desktop-testing.md):
the window never takes focus (Tool, WindowDoesNotAcceptFocus, WA_ShowWithoutActivating),
lets every click through (WindowTransparentForInput: the X input shape is empty). Under a
reparenting window manager the frame it adds would swallow clicks, so on X11 the window
bypasses the window manager (override-redirect) and re-raises itself every
`RAISE_INTERVAL_MS` while visible (through python-xlib: Qt's raise did not restack it),
since no window manager keeps it on top; window managers never stack their own windows
above it, but other override-redirect windows (popups, other overlays) can land above. The window is
hidden while it has nothing to show; without a compositor its translucent parts are black.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Mapping

from PySide6.QtCore import QRect, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QGuiApplication, QPainter, QPaintEvent, QScreen
from PySide6.QtWidgets import QWidget

from subtone.config.settings import OverlaySettings
from subtone.overlay.palette import (
    BACKDROP_RGB,
    DEFAULT_PALETTE,
    NOTE_COLOR,
    EmotionStyle,
    every_style,
    faded_alpha,
    style_for,
)
from subtone.service.events import Caption

log = logging.getLogger(__name__)

RAISE_INTERVAL_MS = 500
"""How often a window-manager-bypassing overlay re-raises itself above newly opened windows."""
BANNER_SECONDS = 8.0
"""How long a banner stays (the tray keeps showing an error after that)."""
TICK_MS = 50
"""Fade animation step (20 fps), only while captions are shown."""
PADDING_PX = 14
CORNER_RADIUS_PX = 10
PARTIAL_MARK = "\u2026"
"""Glued to a partial's last word ("country…"): it can never wrap onto a row of its own."""
TENTATIVE_FLOOR = 0.7
"""A partial's unsettled words are drawn up to this much fainter (and in italics): they may still
change. Each color fades only as far as WCAG AA contrast allows (palette.faded_alpha)."""


@dataclass
class _Line:
    caption: Caption
    style: EmotionStyle
    expires_at: float


@dataclass(frozen=True)
class _Row:
    """One visual row: an optional label prefix (first row of a caption) and a stretch of text."""

    line: _Line
    prefix: str
    text: str
    stable: int = 0
    """Leading words of `text` drawn upright: a partial's settled words (`Caption.stable_text`)."""


def _label_first_visible_rows(visible: list["_Row"], every: list["_Row"]) -> list["_Row"]:
    """A caption whose first rows scrolled off keeps its label on its first row still shown:
    no caption is ever identified by color alone."""
    out, labeled = [], set()
    for row in visible:
        line_id = id(row.line)
        if line_id not in labeled and not row.prefix:
            first = next(r for r in every if r.line is row.line)
            row = replace(row, prefix=first.prefix)
        labeled.add(line_id)
        out.append(row)
    return out


class CaptionOverlay(QWidget):
    def __init__(
        self,
        settings: OverlaySettings,
        palette: Mapping[str, EmotionStyle] = DEFAULT_PALETTE,
    ) -> None:
        super().__init__(None)
        self._settings = settings
        self._palette = palette
        self._lines: dict[int, _Line] = {}  # insertion order = display order
        self._note = ""
        self._banner = ""
        self._banner_until = 0.0
        self._bypass_wm = QGuiApplication.platformName() == "xcb"

        flags = (
            Qt.WindowType.Window
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.Tool
            | Qt.WindowType.WindowTransparentForInput
            | Qt.WindowType.WindowDoesNotAcceptFocus
            | Qt.WindowType.NoDropShadowWindowHint
        )
        if self._bypass_wm:
            flags |= Qt.WindowType.X11BypassWindowManagerHint
        self.setWindowFlags(flags)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_X11DoNotAcceptFocus)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWindowTitle("subtone captions")

        self._set_fonts()

        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        self._raiser = QTimer(self)
        self._raiser.setInterval(RAISE_INTERVAL_MS)
        self._raiser.timeout.connect(self._keep_on_top)
        self._x11: _X11Raiser | None = None
        self._x11_tried = False
        self._warned_monitor = False
        self._watched_screen: QScreen | None = None

        app = QGuiApplication.instance()
        # Bound methods, not lambdas: Qt drops these connections when the overlay is deleted.
        app.screenAdded.connect(self._on_screens_changed)
        app.screenRemoved.connect(self._on_screens_changed)
        app.primaryScreenChanged.connect(self._on_screens_changed)
        self._place()

    def _set_fonts(self) -> None:
        settings = self._settings
        family = settings.font_family or QFont().defaultFamily()
        self._font = QFont(family)
        self._font.setPointSize(settings.font_size)
        self._label_font = QFont(self._font)
        self._label_font.setBold(True)
        self._partial_font = QFont(self._font)
        self._partial_font.setItalic(True)
        # Strong emotion: a heavier weight of the same letters (arousal as font weight).
        self._strong_font, self._strong_partial_font = QFont(self._font), QFont(self._partial_font)
        for font in (self._strong_font, self._strong_partial_font):
            font.setWeight(QFont.Weight.Bold)
        self._note_font = QFont(self._font)
        self._note_font.setPointSize(max(8, round(settings.font_size * 0.6)))
        label_metrics = QFontMetrics(self._label_font)
        # Room for the widest emotion label (a guess, "disgust?", included) plus a language tag ("KO"),
        # so every caption's text starts in one column.
        self._label_column = max(label_metrics.horizontalAdvance(self._prefix(st, "WW")) for st in every_style(self._palette))

    def _text_font(self, caption: Caption, settled: bool) -> QFont:
        """Upright for a final and a partial's settled words, italic for its tentative tail; bold when strong."""
        if settled or caption.is_final:
            return self._strong_font if caption.strong else self._font
        return self._strong_partial_font if caption.strong else self._partial_font

    # ----- public -----

    def apply_settings(self, settings: OverlaySettings) -> None:
        """A new look ([overlay] reloaded): fonts, place, size, timing; captions on screen stay."""
        self._settings = settings
        self._set_fonts()
        self._place()
        self.update()

    def show_caption(self, caption: Caption) -> None:
        if caption.is_final and not caption.text.strip():
            if self._lines.pop(caption.utterance_id, None) is not None:
                self._after_change()
            return
        style = style_for(caption.emotion, self._palette, caption.emotion_uncertain)
        expires = time.monotonic() + self._settings.caption_seconds
        line = self._lines.get(caption.utterance_id)
        if line is None:
            self._lines[caption.utterance_id] = _Line(caption, style, expires)
            # Every caption takes at least one row; older ones beyond that cannot show anyway.
            while len(self._lines) > self._settings.lines:
                del self._lines[next(iter(self._lines))]
        else:
            line.caption, line.style, line.expires_at = caption, style, expires
        self._after_change()

    def set_legend_note(self, text: str) -> None:
        self._note = text.strip()
        self._after_change()

    def show_banner(self, text: str, seconds: float = BANNER_SECONDS) -> None:
        """A one-line message above the captions for `seconds`, shown even when nobody speaks
        (microphone lost, listening off, how to start); "" removes it."""
        self._banner = text.strip()
        self._banner_until = time.monotonic() + seconds if self._banner else 0.0
        self._after_change()

    def banner(self) -> str:
        """The banner on screen now ("" if none)."""
        return self._banner if self._banner_active(time.monotonic()) else ""

    def _banner_active(self, now: float) -> bool:
        return bool(self._banner) and now < self._banner_until

    def _header(self) -> list[str]:
        """Small lines above the captions: the banner while it lasts, then the legend note."""
        banner = [self._banner] if self._banner_active(time.monotonic()) else []
        return banner + ([self._note] if self._note and self._lines else [])

    def shown_captions(self) -> list[Caption]:
        return [line.caption for line in self._lines.values()]

    def caption_rect(self) -> QRect:
        if not self.isVisible() or not self._lines:
            return QRect()
        return self._box_rect(len(self._rows())).translated(self.geometry().topLeft())

    # ----- geometry -----

    def _screen(self) -> QScreen:
        screens = QGuiApplication.screens()
        index = self._settings.monitor
        if index == -1:
            return QGuiApplication.primaryScreen()
        if 0 <= index < len(screens):
            return screens[index]
        if not self._warned_monitor:
            self._warned_monitor = True
            log.warning("overlay.monitor = %d, but there are %d monitors: using the primary one", index, len(screens))
        return QGuiApplication.primaryScreen()

    def _line_height(self) -> int:
        return QFontMetrics(self._font).lineSpacing()

    def _note_height(self) -> int:
        return QFontMetrics(self._note_font).lineSpacing() * len(self._header())

    def _place(self) -> None:
        s = self._settings
        screen = self._screen()
        if screen is not self._watched_screen:
            # Follow the monitor's resolution or panel changes.
            screen.availableGeometryChanged.connect(self._on_screens_changed)
            self._watched_screen = screen
        area = screen.availableGeometry()
        width = round(area.width() * s.width)
        # Room for the banner and note lines even when there are none, so they never move the captions.
        note_room = 2 * QFontMetrics(self._note_font).lineSpacing()
        height = 2 * PADDING_PX + note_room + s.lines * self._line_height()
        vertical, _, horizontal = s.position.partition("-")
        if horizontal == "left":
            x = area.left() + s.margin_px
        elif horizontal == "right":
            x = area.right() + 1 - s.margin_px - width
        else:
            x = area.left() + (area.width() - width) // 2
        y = area.top() + s.margin_px if vertical == "top" else area.bottom() + 1 - s.margin_px - height
        self.setGeometry(x, y, width, height)

    def _on_screens_changed(self, *_: object) -> None:
        self._place()

    def _box_rect(self, rows: int) -> QRect:
        """The backdrop box in widget coordinates, hugging the top or bottom edge by position."""
        height = 2 * PADDING_PX + self._note_height() + rows * self._line_height()
        top = 0 if self._settings.position.startswith("top") else self.height() - height
        return QRect(0, top, self.width(), height)

    # ----- layout -----

    def _prefix(self, style: EmotionStyle, language: str = "", speaker: str = "") -> str:
        """The label before a caption's first row: who spoke, emotion glyph and word, the language heard."""
        parts = [f"{speaker}:"] if speaker else []
        if style.label:
            parts.append(f"{style.glyph} {style.label}")
        if language and self._settings.show_language:
            parts.append(language.upper())
        return "  ".join(parts) + "  " if parts else ""

    def _indent(self, line: _Line) -> int:
        """Where a labeled caption's text starts: one column for every caption on screen, wide
        enough for the longest speaker name among them."""
        metrics = QFontMetrics(self._label_font)
        names = [f"{ln.caption.speaker}:  " for ln in self._lines.values() if ln.caption.speaker]
        return self._label_column + max((metrics.horizontalAdvance(n) for n in names), default=0)

    def _rows(self) -> list[_Row]:
        """Word-wrapped rows of every caption, newest last, cut to the configured number of lines."""
        width = self.width() - 2 * PADDING_PX
        rows = [row for line in self._lines.values() for row in self._wrap(line, width)]
        return _label_first_visible_rows(rows[-self._settings.lines :], rows)

    def _wrap(self, line: _Line, width: int) -> list[_Row]:
        """One caption's rows, wrapped in the font its text is drawn in (a bold strong caption is wider)."""
        caption = line.caption
        metrics = QFontMetrics(self._text_font(caption, settled=False))
        text = caption.text.strip()
        if not caption.is_final:  # one ellipsis, even when the recognizer wrote its own
            text = text.rstrip(".\u2026 ") + PARTIAL_MARK
        prefix = self._prefix(line.style, caption.language, caption.speaker)
        available = width - (self._indent(line) if prefix else 0)
        settled = len(caption.stable_text.split()) if not caption.is_final else 0
        rows: list[_Row] = []
        current, done = "", 0  # done: words already in earlier rows

        def close_row() -> None:
            count = len(current.split())
            rows.append(_Row(line, "" if rows else prefix, current, min(count, max(0, settled - done))))

        for word in text.split():
            candidate = f"{current} {word}" if current else word
            if current and metrics.horizontalAdvance(candidate) > available:
                close_row()
                current, done = word, done + len(current.split())
            else:
                current = candidate
        close_row()
        return rows

    # ----- time -----

    def _opacity(self, line: _Line, now: float) -> float:
        remaining = line.expires_at - now
        fade = self._settings.fade_seconds
        if remaining <= 0:
            return 0.0
        if fade > 0 and remaining < fade:
            return remaining / fade
        return 1.0

    def _after_change(self) -> None:
        if self._lines or self._banner_active(time.monotonic()):
            if not self.isVisible():
                self._place()
                self.show()
                if self._bypass_wm:
                    self._raiser.start()
            self.raise_()
            self._tick.start()
        else:
            self._tick.stop()
            self._raiser.stop()
            self.hide()
        self.update()

    def _on_tick(self) -> None:
        now = time.monotonic()
        expired = [uid for uid, line in self._lines.items() if line.expires_at <= now]
        for uid in expired:
            del self._lines[uid]
        banner_over = bool(self._banner) and not self._banner_active(now)
        if banner_over:
            self._banner = ""
        if expired or banner_over or any(self._opacity(line, now) < 1.0 for line in self._lines.values()):
            self._after_change()

    def _keep_on_top(self) -> None:
        # QWidget.raise_() did not restack the override-redirect window here (Qt 6.12, xcb),
        # so the raise goes straight to the X server over a second connection.
        if self._x11 is None and not self._x11_tried:
            self._x11_tried = True
            self._x11 = _X11Raiser.open()
        if self._x11 is None or not self._x11.raise_window(int(self.winId())):
            self.raise_()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self._tick.stop()
        self._raiser.stop()
        if self._x11 is not None:
            self._x11.close()
            self._x11, self._x11_tried = None, False
        super().closeEvent(event)

    # ----- painting -----

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        now = time.monotonic()
        header = self._header()
        if not self._lines and not header:
            return
        rows = self._rows()
        box = self._box_rect(len(rows))
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.fillRect(self.rect(), Qt.GlobalColor.transparent)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)

        strongest = max([self._opacity(line, now) for line in self._lines.values()], default=1.0)
        backdrop = QColor(*BACKDROP_RGB)
        backdrop.setAlphaF(self._settings.backdrop_opacity * strongest)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(backdrop)
        painter.drawRoundedRect(QRectF(box), CORNER_RADIUS_PX, CORNER_RADIUS_PX)

        y = self._paint_header(painter, header, box, strongest)
        for row in rows:
            self._paint_row(painter, row, box.left() + PADDING_PX, y, now)
            y += self._line_height()
        painter.end()

    def _paint_header(self, painter: QPainter, header: list[str], box: QRect, opacity: float) -> int:
        """The banner and note lines at the top of the box; returns the y where the captions start."""
        y = box.top() + PADDING_PX
        note = QColor(NOTE_COLOR)
        note.setAlphaF(opacity)
        painter.setPen(note)
        painter.setFont(self._note_font)
        metrics = QFontMetrics(self._note_font)
        room = box.width() - 2 * PADDING_PX
        for text in header:  # one line each, however long: a long banner ends in "…"
            text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, room)
            painter.drawText(box.left() + PADDING_PX, y + metrics.ascent(), text)
            y += metrics.lineSpacing()
        return y

    def _paint_row(self, painter: QPainter, row: _Row, x: int, top: int, now: float) -> None:
        """One row: its label (first row of a caption), settled words upright, a partial's tentative tail faded."""
        caption = row.line.caption
        color = QColor(row.line.style.color)
        color.setAlphaF(self._opacity(row.line, now))
        painter.setPen(color)
        baseline = top + QFontMetrics(self._font).ascent()
        if row.prefix:
            painter.setFont(self._label_font)
            painter.drawText(x, baseline, row.prefix)
        if self._prefix(row.line.style, caption.language, caption.speaker):
            x += self._indent(row.line)  # text of every labeled row starts in one column
        words = row.text.split(" ")
        if row.stable:  # a partial's settled words: upright, as they will stay in the final
            settled = " ".join(words[: row.stable])
            font = self._text_font(caption, settled=True)
            painter.setFont(font)
            painter.drawText(x, baseline, settled)
            x += QFontMetrics(font).horizontalAdvance(settled + " ")
        if not caption.is_final:
            tentative = QColor(color)
            rgb = (tentative.red(), tentative.green(), tentative.blue())
            tentative.setAlphaF(color.alphaF() * faded_alpha(rgb, TENTATIVE_FLOOR, self._settings.backdrop_opacity))
            painter.setPen(tentative)
        painter.setFont(self._text_font(caption, settled=False))
        painter.drawText(x, baseline, " ".join(words[row.stable :]))


class _X11Raiser:
    """Raises a window through python-xlib; None from open() when X11 or python-xlib is missing."""

    def __init__(self, display) -> None:
        self._display = display

    @classmethod
    def open(cls) -> "_X11Raiser | None":
        try:
            from Xlib import display as xdisplay

            return cls(xdisplay.Display())
        except Exception as exc:  # no python-xlib, no DISPLAY: fall back to Qt's raise
            log.debug("python-xlib raise unavailable (%s); using Qt's raise", exc)
            return None

    def raise_window(self, window_id: int) -> bool:
        from Xlib import X

        try:
            self._display.create_resource_object("window", window_id).configure(stack_mode=X.Above)
            self._display.flush()
            return True
        except Exception as exc:
            log.debug("X11 raise failed: %s", exc)
            return False

    def close(self) -> None:
        self._display.close()
