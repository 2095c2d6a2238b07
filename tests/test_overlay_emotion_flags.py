"""An uncertain emotion and a strong one, as the overlay really draws them on a real X11 desktop
(Xvfb + openbox + xcompmgr): screenshots, not the widget's state.

- uncertain: the caption's letters are the uncertain grey, and none are the emotion's own color;
- strong: the same words drawn with more ink (a heavier weight), the label unchanged.

The backdrop is fully opaque here (backdrop_opacity 1.0, which the settings allow), so every pixel
of the box that is not BACKDROP_RGB is ink, whatever window happens to lie behind. Every grab
waits for the screen to settle (two identical grabs in a row), with a generous timeout: no
fixed sleeps to tune under load.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from x11_env import process_events_for, process_events_until

from subtone.overlay.palette import BACKDROP_RGB, DEFAULT_PALETTE, UNCERTAIN_COLOR, hex_to_rgb, style_for
from subtone.service.events import Caption
from test_overlay_contrast import _grab
from test_overlay_desktop import default_overlay_settings

pytestmark = pytest.mark.desktop

FONT_SIZE = 40
TEXT = "Stop that now"


@pytest.fixture()
def overlay(window_manager, qapp):
    from subtone.overlay.window import CaptionOverlay

    settings = replace(default_overlay_settings(), caption_seconds=600.0, font_size=FONT_SIZE, width=0.9,
                       backdrop_opacity=1.0)
    widget = CaptionOverlay(settings)
    yield widget
    widget.close()
    widget.deleteLater()
    process_events_for(0.05)


def flagged(text: str = TEXT, emotion: str = "angry", final: bool = True, **flags: bool) -> Caption:
    stable = text.split()[0] if not final else text  # a partial: its first word settled, the rest tentative
    return Caption(1, text, final, 0.0, 1.0, emotion, stable_text=stable, **flags)


def settled_shot(overlay, timeout: float = 15.0) -> np.ndarray:
    """The caption box (inside its rounded corners) once the screen stops changing."""
    process_events_until(lambda: overlay.isVisible() and not overlay.caption_rect().isEmpty(), timeout, "the caption")
    shots: list[np.ndarray] = []

    def stable() -> bool:
        box = overlay.caption_rect().adjusted(12, 12, -12, -12)
        shots.append(_grab(box.x(), box.y(), box.width(), box.height()))
        process_events_for(0.15)  # paint and composite in between
        return len(shots) >= 2 and shots[-1].shape == shots[-2].shape and np.array_equal(shots[-1], shots[-2])

    process_events_until(stable, timeout, "the screen to settle", poll_ms=50)
    return shots[-1]


def save(shot: np.ndarray, name: str) -> None:
    if os.environ.get("SUBTONE_SCREENSHOT_DIR"):
        from PIL import Image

        Image.fromarray(shot).save(Path(os.environ["SUBTONE_SCREENSHOT_DIR"]) / name)


def near(shot: np.ndarray, color: str, tolerance: int) -> int:
    """How many pixels are within `tolerance` of `color` on every channel."""
    return int((np.abs(shot.astype(int) - np.array(hex_to_rgb(color))).max(axis=-1) <= tolerance).sum())


def ink(shot: np.ndarray) -> int:
    """Pixels clearly off the (opaque) backdrop: letters and the solid part of their edges."""
    return int((np.abs(shot.astype(int) - np.array(BACKDROP_RGB)).max(axis=-1) > 60).sum())


@pytest.mark.parametrize("final", [True, False], ids=["final", "partial"])
def test_an_uncertain_caption_is_grey_not_its_emotion_color_and_keeps_its_word_as_a_guess(overlay, final):
    angry = DEFAULT_PALETTE["angry"].color
    overlay.show_caption(flagged(final=final))
    sure = settled_shot(overlay)
    # The control: a confident angry caption is orange, so the check below can fail.
    assert near(sure, angry, 12) > 500, "the confident caption is not angry's color: the measurement is broken"

    overlay.show_caption(flagged(final=final, emotion_uncertain=True))
    process_events_until(lambda: overlay._lines[1].style.uncertain, 5, "the uncertain style")
    shot = settled_shot(overlay)
    save(shot, f"overlay_uncertain_{'final' if final else 'partial'}.png")
    grey, orange = near(shot, UNCERTAIN_COLOR, 12), near(shot, angry, 40)
    assert grey > 500, f"only {grey} pixels of the uncertain grey {UNCERTAIN_COLOR}"
    assert orange == 0, f"{orange} pixels still near angry's {angry}"
    row = overlay._rows()[0]
    assert "angry?" in row.prefix and DEFAULT_PALETTE["angry"].glyph in row.prefix  # the word and glyph, as a guess


@pytest.mark.parametrize("final", [True, False], ids=["final", "partial"])
def test_a_strong_caption_is_drawn_heavier_with_the_same_label(overlay, final):
    from subtone.overlay.window import PADDING_PX

    overlay.show_caption(flagged(final=final))
    plain = settled_shot(overlay)
    overlay.show_caption(flagged(final=final, strong=True))
    process_events_until(lambda: overlay._lines[1].caption.strong, 5, "the strong caption")
    bold = settled_shot(overlay)
    save(np.concatenate([plain, bold]), f"overlay_strong_{'final' if final else 'partial'}.png")
    assert plain.shape == bold.shape  # same box: the strong caption still fits its row

    # The label column is the same for both (bold labels always): only the text's ink may change.
    text_x = overlay._indent(overlay._lines[1]) + PADDING_PX - 12  # less the grab's inset
    label_plain, label_bold = ink(plain[:, :text_x]), ink(bold[:, :text_x])
    text_plain, text_bold = ink(plain[:, text_x:]), ink(bold[:, text_x:])
    assert abs(label_bold - label_plain) <= 0.02 * label_plain, (label_plain, label_bold)
    assert text_bold > 1.25 * text_plain, f"strong text has {text_bold} ink pixels, plain {text_plain}: not heavier"


def test_layout_leaves_room_for_a_guess_label_and_wraps_strong_text_in_its_own_width(overlay):
    from PySide6.QtGui import QFontMetrics

    from subtone.overlay.window import PADDING_PX

    widest = max(("disgust", "neutral", "angry"), key=lambda e: len(style_for(e, uncertain=True).label))
    guess = overlay._prefix(style_for(widest, uncertain=True), "KO")
    assert QFontMetrics(overlay._label_font).horizontalAdvance(guess) <= overlay._label_column

    long_text = " ".join(["stop"] * 60)
    overlay.show_caption(flagged(long_text, strong=True))
    rows = overlay._rows()
    room = overlay.width() - 2 * PADDING_PX - overlay._indent(overlay._lines[1])
    bold = QFontMetrics(overlay._strong_font)
    assert all(bold.horizontalAdvance(row.text) <= room for row in rows)
    plain_rows = overlay._wrap(replace(overlay._lines[1], caption=flagged(long_text)), overlay.width() - 2 * PADDING_PX)
    bold_rows = overlay._wrap(overlay._lines[1], overlay.width() - 2 * PADDING_PX)
    assert len(bold_rows) > len(plain_rows)  # wider letters: more rows, none running off the box
