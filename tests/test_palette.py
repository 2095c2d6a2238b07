"""Emotion palette: WCAG contrast against the caption backdrop, labels, and the settings that guard it."""

from __future__ import annotations

import pytest

from subtone.config.settings import ConfigError, load_settings
from subtone.overlay.palette import (
    DEFAULT_PALETTE,
    MIN_BACKDROP_OPACITY,
    NONE_STYLE,
    NOTE_COLOR,
    UNCERTAIN_COLOR,
    WCAG_AA,
    blend,
    contrast_ratio,
    effective_backdrops,
    hex_to_rgb,
    relative_luminance,
    style_for,
    uncertain_style,
    worst_case_contrast,
)
from subtone.service.events import EMOTIONS


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    # #767676 on white is the well-known lightest gray that passes AA (4.54:1).
    assert contrast_ratio((0x76, 0x76, 0x76), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    assert relative_luminance((255, 0, 0)) == pytest.approx(0.2126)


def test_palette_covers_every_emotion_with_color_label_and_glyph():
    assert set(DEFAULT_PALETTE) == set(EMOTIONS)
    for name, style in DEFAULT_PALETTE.items():
        assert style.emotion == name and style.label and style.glyph
    assert len({s.color for s in DEFAULT_PALETTE.values()}) == len(EMOTIONS)
    assert len({s.glyph for s in DEFAULT_PALETTE.values()}) == len(EMOTIONS)
    assert style_for(None) is NONE_STYLE and style_for("bored") is NONE_STYLE
    assert style_for("sad") is DEFAULT_PALETTE["sad"]


@pytest.mark.parametrize("style", [*DEFAULT_PALETTE.values(), NONE_STYLE], ids=lambda s: s.emotion)
def test_every_text_color_has_aa_contrast_over_any_background(style):
    ratio = worst_case_contrast(style.rgb, MIN_BACKDROP_OPACITY)
    assert ratio >= WCAG_AA, f"{style.emotion} {style.color}: {ratio:.2f}:1 at opacity {MIN_BACKDROP_OPACITY}"


def test_uncertain_style_keeps_the_word_and_glyph_as_a_guess_without_the_emotion_color():
    for name, style in DEFAULT_PALETTE.items():
        guess = style_for(name, uncertain=True)
        assert guess.uncertain and not style.uncertain
        assert guess.glyph == style.glyph and guess.emotion == name
        assert guess.label == f"{style.label}?"  # the word stays, marked as a guess
        assert guess.color == UNCERTAIN_COLOR and guess.color != style.color
    assert style_for(None, uncertain=True) is NONE_STYLE and style_for("bored", uncertain=True) is NONE_STYLE
    assert style_for("sad", uncertain=False) is DEFAULT_PALETTE["sad"]
    assert uncertain_style(DEFAULT_PALETTE["sad"]) is style_for("sad", uncertain=True)  # cached: no churn per repaint


def test_uncertain_color_has_aa_contrast_over_any_background():
    ratio = worst_case_contrast(hex_to_rgb(UNCERTAIN_COLOR), MIN_BACKDROP_OPACITY)
    assert ratio >= WCAG_AA, f"{UNCERTAIN_COLOR}: {ratio:.2f}:1 at opacity {MIN_BACKDROP_OPACITY}"


def test_legend_note_color_has_aa_contrast():
    assert worst_case_contrast(hex_to_rgb(NOTE_COLOR), MIN_BACKDROP_OPACITY) >= WCAG_AA


def test_worst_case_contrast_can_fail():
    # Okabe–Ito's own vermillion is too dark for this backdrop: the check must catch it.
    assert worst_case_contrast((0xD5, 0x5E, 0x00), MIN_BACKDROP_OPACITY) < WCAG_AA
    # A text color between the two backdrop extremes has no guarantee at all.
    over_black, over_white = effective_backdrops(MIN_BACKDROP_OPACITY)
    assert worst_case_contrast(over_white) == 1.0
    assert relative_luminance(over_black) < relative_luminance(over_white)


def test_settings_allow_no_backdrop_opacity_below_the_one_the_contrast_is_checked_at():
    assert load_settings(overrides={"overlay.backdrop_opacity": MIN_BACKDROP_OPACITY}).overlay.backdrop_opacity == MIN_BACKDROP_OPACITY
    with pytest.raises(ConfigError, match="backdrop_opacity"):
        load_settings(overrides={"overlay.backdrop_opacity": MIN_BACKDROP_OPACITY - 0.01})


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("overlay.backdrop_opacity", 0.5, "from 0.8 to 1.0"),
        ("overlay.position", "middle", "expected one of"),
        ("overlay.lines", 0, "from 1 to 10"),
        ("overlay.font_size", "big", "whole number"),
        ("overlay.caption_seconds", 0.2, "from 1.0 to 120.0"),
        ("overlay.width", 1.5, "from 0.2 to 1.0"),
        ("overlay.monitor", -2, "from -1 to 63"),
        ("overlay.colour", "red", "unknown key 'overlay.colour'"),
        ("hotkey.style", "tap", "expected one of 'hold', 'toggle'"),
    ],
)
def test_overlay_and_hotkey_settings_reject_bad_values(tmp_path, key, value, words):
    empty = tmp_path / "config.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as err:
        load_settings(empty, {key: value})
    message = str(err.value)
    assert words in message and key.split(".")[-1] in message


def test_overlay_and_hotkey_defaults_come_from_default_toml_and_are_usable(tmp_path):
    import tomllib

    from subtone.config.settings import DEFAULT_TOML
    from subtone.service.trigger.hotkey import parse_combo

    shipped = tomllib.loads(DEFAULT_TOML.read_text())
    empty = tmp_path / "config.toml"
    empty.write_text("")
    s = load_settings(empty)
    for section in ("overlay", "hotkey"):
        loaded = getattr(s, section)
        assert {key: getattr(loaded, key) for key in shipped[section]} == shipped[section], section
    assert parse_combo(s.hotkey.combo)  # raises on a combo the listener cannot hold


# Machado, Oliveira & Fernandes (2009) dichromacy simulation matrices (severity 1), linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
    "typical": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
}


def _lab(rgb, matrix):
    import numpy as np

    c = np.asarray(rgb) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    seen = np.clip(np.asarray(matrix) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ seen
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", list(CVD))
def test_emotion_colors_stay_apart_for_color_blind_viewers(vision):
    import itertools

    import numpy as np

    labs = {name: _lab(style.rgb, CVD[vision]) for name, style in DEFAULT_PALETTE.items()}
    closest = min(
        (float(np.linalg.norm(labs[a] - labs[b])), a, b) for a, b in itertools.combinations(labs, 2)
    )
    assert closest[0] >= 15.0, f"{vision}: {closest[1]} and {closest[2]} only ΔE {closest[0]:.1f} apart"


def test_tentative_words_fade_only_as_far_as_wcag_aa_allows():
    from subtone.overlay.palette import faded_alpha, worst_case_contrast

    alphas = {}
    for name, style in DEFAULT_PALETTE.items():
        rgb = hex_to_rgb(style.color)
        alpha = faded_alpha(rgb)
        alphas[name] = alpha
        for back in effective_backdrops():
            assert contrast_ratio(blend(rgb, alpha, back), back) >= 4.5, (name, alpha)
        if worst_case_contrast(rgb) >= 9.0:
            assert alpha <= 0.75, (name, alpha)  # plenty of contrast: visibly fainter
    assert min(alphas.values()) < 1.0  # some color is dimmed at all


@pytest.mark.parametrize("vision", list(CVD))
def test_uncertain_color_stays_apart_from_every_emotion_color_for_color_blind_viewers(vision):
    import numpy as np

    grey = _lab(hex_to_rgb(UNCERTAIN_COLOR), CVD[vision])
    gaps = {name: float(np.linalg.norm(grey - _lab(style.rgb, CVD[vision]))) for name, style in DEFAULT_PALETTE.items()}
    closest = min(gaps, key=gaps.get)
    assert gaps[closest] >= 15.0, f"{vision}: uncertain and {closest} only ΔE {gaps[closest]:.1f} apart"


def test_the_separation_check_catches_a_pure_grey():
    """No readable pure grey works: the check must fail one (fear looks grey to deuteranopes)."""
    import numpy as np

    grey, fear = (0xC8, 0xC8, 0xC8), DEFAULT_PALETTE["fear"].rgb
    assert worst_case_contrast(grey) >= WCAG_AA
    assert float(np.linalg.norm(_lab(grey, CVD["deuteranopia"]) - _lab(fear, CVD["deuteranopia"]))) < 15.0
