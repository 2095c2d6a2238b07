"""WCAG contrast of caption letters against their backdrop, measured on a real screenshot: the overlay
(default backdrop_opacity, font 40) over a busy window of black text on white and white text on
black, on Xvfb + openbox + xcompmgr (a compositor, so the backdrop is truly translucent).

How the pixels are told apart, without trusting the palette: a screenshot of the busy window alone
gives what is behind every pixel; the backdrop there should be BACKDROP_RGB blended over it. Pixels
of the captioned screenshot that differ from that blend are ink (letters and their anti-aliased
edges); a letter pixel is inside a stroke (ink on every side) and as far from the backdrop as that
stroke gets nearby (fully covered: the text's own color), and what is far enough from any ink is
backdrop. Each letter pixel is held against the lightest backdrop pixel within REACH px (the
worst of its surroundings, since every caption color is light): the minimum over the caption is the
number reported, separately for letters with white and with black behind them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from x11_env import process_events_for, process_events_until

from subtone.overlay.palette import BACKDROP_RGB, DEFAULT_PALETTE, UNCERTAIN_COLOR, WCAG_AA, hex_to_rgb
from test_overlay_desktop import caption, default_overlay_settings

STYLE_COLORS = {**{name: style.color for name, style in DEFAULT_PALETTE.items()}, "uncertain": UNCERTAIN_COLOR}
"""Every text color a caption can have: one per emotion, and the uncertain grey (an unsure emotion)."""

pytestmark = pytest.mark.desktop

FONT_SIZE = 40
REACH = 16
"""How far around a letter pixel its backdrop is looked for (px): about a letter's height at 40 pt."""
BAND_PX = 22
"""Height of each stripe of the busy window: a caption row crosses black-on-white and white-on-black."""


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB pixels (…, 3) in 0–255."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def _max_filter(a: np.ndarray, reach: int) -> np.ndarray:
    """The largest value within `reach` px (a square), separably; -inf pads the edges."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(a, reach, constant_values=-np.inf)
    rows = sliding_window_view(padded, 2 * reach + 1, axis=0).max(axis=-1)
    return sliding_window_view(rows, 2 * reach + 1, axis=1).max(axis=-1)


def _erode(mask: np.ndarray) -> np.ndarray:
    """True where the pixel and its 8 neighbours are all True."""
    p = np.pad(mask, 1, constant_values=False)
    out = np.ones_like(mask)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out &= p[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


def _grab(x: int, y: int, w: int, h: int) -> np.ndarray:
    from PySide6.QtGui import QGuiApplication, QImage

    image = QGuiApplication.primaryScreen().grabWindow(0, x, y, w, h).toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


class BusyWindow:
    """Full-screen stripes of black text on white and white text on black, like a document or a terminal."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtGui import QColor, QFont, QPainter
        from PySide6.QtWidgets import QWidget

        class _Widget(QWidget):
            def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
                painter = QPainter(self)
                font = QFont("DejaVu Sans")
                font.setPixelSize(BAND_PX - 6)
                painter.setFont(font)
                words = "The quick brown fox jumps over the lazy dog 0123456789 WMW ### ||| " * 8
                for i, top in enumerate(range(0, self.height(), BAND_PX)):
                    white = i % 2 == 0
                    painter.fillRect(0, top, self.width(), BAND_PX, QColor("white" if white else "black"))
                    painter.setPen(QColor("black" if white else "white"))
                    painter.drawText(4 - (i * 7) % 40, top + BAND_PX - 6, words)
                painter.end()

        self.widget = _Widget()
        self.widget.setWindowFlag(Qt.WindowType.FramelessWindowHint)
        self.widget.setWindowTitle("busy window behind the captions")


@pytest.fixture()
def busy(window_manager, qapp):
    from PySide6.QtGui import QGuiApplication

    window = BusyWindow()
    window.widget.setGeometry(QGuiApplication.primaryScreen().geometry())
    window.widget.show()
    process_events_until(lambda: window.widget.isVisible(), 5, "the busy window")
    process_events_for(0.8)  # mapped, painted and composited
    yield window.widget
    window.widget.close()
    window.widget.deleteLater()
    process_events_for(0.05)


def _overlay(opacity: float):
    from subtone.overlay.window import CaptionOverlay

    settings = replace(default_overlay_settings(), caption_seconds=120.0, font_size=FONT_SIZE, lines=7, width=0.8,
                       backdrop_opacity=opacity)
    return CaptionOverlay(settings)


def measure(busy, opacity: float, shot_name: str) -> tuple[dict[str, float], dict[str, float], tuple[float, float]]:
    """Show one caption per emotion, and one uncertain, over the busy window; the lowest letter/backdrop
    contrast with white and with black text behind, per style, and the backdrop's luminance range."""
    behind = _grab(0, 0, busy.width(), busy.height())
    overlay = _overlay(opacity)
    try:
        texts = ["Meet me at noon", "I lost my keys", "Stop that now", "What was that", "Not that again", "Fine by me"]
        for uid, (emotion, text) in enumerate(zip(("neutral", "sad", "angry", "fear", "disgust", "happy"), texts), 1):
            overlay.show_caption(caption(uid, text, emotion))
        overlay.show_caption(replace(caption(7, "Maybe later then", "angry"), emotion_uncertain=True))
        process_events_until(lambda: overlay.isVisible() and not overlay.caption_rect().isEmpty(), 5, "the captions")
        process_events_for(1.0)  # painted, raised above the busy window, composited
        box = overlay.caption_rect().adjusted(12, 12, -12, -12)  # inside the rounded corners
        x, y, w, h = box.x(), box.y(), box.width(), box.height()
        shot = _grab(x, y, w, h)
    finally:
        overlay.close()
        overlay.deleteLater()
        process_events_for(0.2)
    under = behind[y : y + h, x : x + w]
    if os.environ.get("SUBTONE_SCREENSHOT_DIR"):
        from PIL import Image

        Image.fromarray(shot).save(Path(os.environ["SUBTONE_SCREENSHOT_DIR"]) / shot_name)

    expected = opacity * np.array(BACKDROP_RGB, dtype=np.float64) + (1 - opacity) * under
    diff = np.abs(shot.astype(np.float64) - expected).max(axis=-1)
    ink = diff > 24
    # Fully covered letter pixels: inside a stroke, and as far from the backdrop as the stroke gets
    # nearby (an anti-aliased edge pixel is a mix of text and backdrop: not the text's color).
    strongest_near = _max_filter(np.where(ink, diff, -np.inf), 3)
    letters = _erode(ink) & (diff >= 0.95 * strongest_near)
    far_from_ink = ~_max_filter(np.where(ink, 1.0, 0.0), 2).astype(bool)
    lum = luminance(shot)
    lightest_backdrop = _max_filter(np.where(far_from_ink, lum, -np.inf), REACH)
    measurable = letters & np.isfinite(lightest_backdrop)

    # The measurement means something only if the backdrop really lets both kinds of stripes through.
    behind_lum = luminance(under)
    over_white, over_black = far_from_ink & (behind_lum > 0.5), far_from_ink & (behind_lum < 0.05)
    assert over_white.sum() > 1000 and over_black.sum() > 1000
    assert shot[over_white].mean() - shot[over_black].mean() > 20, "the backdrop looks opaque: no compositor?"
    assert measurable.sum() > 2000, f"only {measurable.sum()} letter pixels found"

    ratio = (lum + 0.05) / (np.where(measurable, lightest_backdrop, 1.0) + 0.05)
    results = {}
    for name, where in (("white text behind", behind_lum > 0.5), ("black text behind", behind_lum < 0.05)):
        mask = measurable & where
        assert mask.sum() > 500, name
        results[name] = float(ratio[mask].min())
    # Per style: letter pixels attributed to the nearest caption color.
    colors = [np.array(hex_to_rgb(color)) for color in STYLE_COLORS.values()]
    nearest = np.argmin(np.stack([np.abs(shot.astype(int) - c).sum(-1) for c in colors]), axis=0)
    per_emotion = {name: float(ratio[measurable & (nearest == i)].min())
                   for i, name in enumerate(STYLE_COLORS) if (measurable & (nearest == i)).sum() > 100}
    backdrop_lum = lum[far_from_ink]
    return results, per_emotion, (float(backdrop_lum.min()), float(backdrop_lum.max()))


def test_caption_letters_keep_wcag_aa_contrast_over_black_and_white_text_behind(busy, capsys):
    opacity = default_overlay_settings().backdrop_opacity
    assert opacity == 0.85  # the default, as shipped
    results, per_emotion, (lo, hi) = measure(busy, opacity, "overlay_contrast.png")
    with capsys.disabled():
        print(f"\n[contrast] font {FONT_SIZE} pt, backdrop_opacity {opacity}: min letter/backdrop ratio "
              + ", ".join(f"{k} {v:.2f}:1" for k, v in results.items())
              + f"; backdrop luminance {lo:.4f}-{hi:.4f}; per emotion "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_emotion.items(), key=lambda kv: kv[1])))
    assert set(per_emotion) == set(STYLE_COLORS), per_emotion
    for name, value in results.items():
        assert value >= WCAG_AA, f"{name}: {value:.2f}:1 < {WCAG_AA}:1"


def test_the_measurement_catches_a_backdrop_too_thin_to_read(busy):
    """The same measurement at a backdrop opacity the settings forbid (0.3) finds the failure."""
    results, _, _ = measure(busy, 0.3, "overlay_contrast_thin.png")
    assert results["white text behind"] < WCAG_AA, results
