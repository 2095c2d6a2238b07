"""Emotion → caption style: text color, a word label and an icon glyph.

The label and glyph are always drawn, so the emotion never rests on color alone.

An uncertain emotion (`Caption.emotion_uncertain`: the model's confidence is under the threshold)
gets no emotion color, since a wrong color is worse than none: `style_for(..., uncertain=True)`
keeps the emotion's glyph and word, marked as a guess ("angry?"), in `UNCERTAIN_COLOR`, a warm
grey that is neither an emotion's color nor neutral's near-white.

Contrast contract (WCAG 2.x, AA for normal text is 4.5:1): the caption backdrop is
`BACKDROP_RGB` painted at an opacity of at least `MIN_BACKDROP_OPACITY` over whatever
is on screen. Its *effective* color is that blend (per sRGB channel, as compositors
blend). Relative luminance rises with every channel of what lies behind, so the lightest
effective backdrop is the blend over pure white and the darkest over pure black; every
text color here is lighter than both, so its worst case is the blend over white.
`worst_case_contrast` checks both ends, and the unit test holds every style to 4.5:1.

The hues start from the Okabe–Ito color-blind-safe set (yellow, sky blue, vermillion,
reddish purple, bluish green), lightened until they clear 4.5:1 at the worst case, then
nudged so every pair stays apart (CIE76 ΔE ≥ 15) under simulated protanopia, deuteranopia
and tritanopia (tests/test_palette.py). `UNCERTAIN_COLOR` is held to the same two rules: 4.5:1 at
the worst case and ΔE ≥ 15 from every emotion color (neutral's included) under each simulation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Mapping

from subtone.service.events import emotion_word

RGB = tuple[int, int, int]

BACKDROP_RGB: RGB = (12, 12, 12)
"""Color of the rounded box behind the captions."""
MIN_BACKDROP_OPACITY = 0.80
"""Lowest backdrop opacity the settings allow; the contrast contract is checked at this value."""
WCAG_AA = 4.5


@dataclass(frozen=True)
class EmotionStyle:
    emotion: str
    """One of EMOTIONS, or "none" when no emotion model runs."""
    color: str
    """Text color, "#rrggbb"."""
    label: str
    """A word shown before the caption; empty for "none"."""
    glyph: str
    """An icon character (present in DejaVu Sans); empty for "none"."""
    uncertain: bool = False
    """The model's guess, below its confidence threshold: UNCERTAIN_COLOR, the label ends in "?"."""

    @property
    def rgb(self) -> RGB:
        return hex_to_rgb(self.color)


DEFAULT_PALETTE: Mapping[str, EmotionStyle] = {
    "neutral": EmotionStyle("neutral", "#f2f2f2", "neutral", "\u25cb"),  # ○
    "happy": EmotionStyle("happy", "#f0e442", "happy", "\u263a"),  # ☺  Okabe–Ito yellow
    "sad": EmotionStyle("sad", "#6cb8ff", "sad", "\u2639"),  # ☹  sky blue, lighter
    "angry": EmotionStyle("angry", "#ffa060", "angry", "\u26a1"),  # ⚡  vermillion, lighter
    "fear": EmotionStyle("fear", "#e8a0d0", "fear", "\u26a0"),  # ⚠  reddish purple, lighter
    "disgust": EmotionStyle("disgust", "#50d890", "disgust", "\u2716"),  # ✖  bluish green, lighter
}

NOTE_COLOR = "#c8c8c8"
"""The legend note above the captions (e.g. "emotion off: no emotion model")."""

NONE_STYLE = EmotionStyle("none", "#f2f2f2", "", "")
"""Used when a caption carries no emotion (no emotion model, or it is switched off)."""

UNCERTAIN_COLOR = "#cac4bc"
"""Text color of an uncertain emotion: a grey with a faint warm tint, because no pure grey that is
readable (4.5:1) stays ΔE 15 from fear's pink as deuteranopes see it; the tint is what keeps it apart."""


def style_for(
    emotion: str | None, palette: Mapping[str, EmotionStyle] = DEFAULT_PALETTE, uncertain: bool = False
) -> EmotionStyle:
    """The style for an emotion name; None or an unknown name gets NONE_STYLE (uncertain or not:
    there is no guess to show). `uncertain`: the emotion's glyph and word as a guess, no emotion color."""
    if emotion is None:
        return NONE_STYLE
    style = palette.get(emotion, NONE_STYLE)
    return uncertain_style(style) if uncertain and style is not NONE_STYLE else style


@functools.lru_cache(maxsize=64)  # a few styles, asked for on every caption update
def uncertain_style(style: EmotionStyle) -> EmotionStyle:
    """`style` as a guess: same glyph, its word marked ("angry?"), UNCERTAIN_COLOR."""
    return EmotionStyle(style.emotion, UNCERTAIN_COLOR, emotion_word(style.label, uncertain=True), style.glyph, True)


def every_style(palette: Mapping[str, EmotionStyle] = DEFAULT_PALETTE) -> Iterator[EmotionStyle]:
    """Each emotion's style and its uncertain form: what a caption's label can be (for layout)."""
    for style in palette.values():
        yield style
        yield uncertain_style(style)


def hex_to_rgb(color: str) -> RGB:
    text = color.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"color {color!r}: expected #rrggbb")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


def _linear(channel: int) -> float:
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.x relative luminance of an sRGB color, 0 (black) to 1 (white)."""
    r, g, b = (_linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2.x contrast ratio, 1.0 (same) to 21.0 (black on white); order does not matter."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def blend(top: RGB, opacity: float, under: RGB) -> RGB:
    """`top` painted at `opacity` over `under`, per sRGB channel (source-over)."""
    return tuple(round(opacity * t + (1.0 - opacity) * u) for t, u in zip(top, under))  # type: ignore[return-value]


def effective_backdrops(opacity: float = MIN_BACKDROP_OPACITY, backdrop: RGB = BACKDROP_RGB) -> tuple[RGB, RGB]:
    """The backdrop as seen over pure black and over pure white: the two luminance extremes."""
    return blend(backdrop, opacity, (0, 0, 0)), blend(backdrop, opacity, (255, 255, 255))


def worst_case_contrast(text: RGB, opacity: float = MIN_BACKDROP_OPACITY, backdrop: RGB = BACKDROP_RGB) -> float:
    """Lowest contrast of `text` against the backdrop over anything on screen.

    Exact when the text is lighter (or darker) than both extremes; if the text's
    luminance falls between them, some background makes the contrast ~1 and we say so.
    """
    over_black, over_white = effective_backdrops(opacity, backdrop)
    lt = relative_luminance(text)
    lo, hi = relative_luminance(over_black), relative_luminance(over_white)
    if lo <= lt <= hi:
        return 1.0
    return min(contrast_ratio(text, over_black), contrast_ratio(text, over_white))


@functools.lru_cache(maxsize=64)  # pure, a handful of colors, asked on every repaint
def faded_alpha(text: RGB, floor: float = 0.7, opacity: float = MIN_BACKDROP_OPACITY) -> float:
    """How faint a tentative (still changing) word of this color may be drawn: as faint as `floor`,
    but never below WCAG AA contrast against the backdrop over anything on screen."""
    alpha = floor
    while alpha < 1.0:
        if all(contrast_ratio(blend(text, alpha, back), back) >= WCAG_AA for back in effective_backdrops(opacity)):
            return alpha
        alpha = round(alpha + 0.05, 2)
    return 1.0
