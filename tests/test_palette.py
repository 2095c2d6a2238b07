"""Emotion palette: WCAG contrast against the caption backdrop, labels, and the settings that guard it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from subtone.config.settings import ConfigError, OverlaySettings, load_settings
from subtone.overlay.palette import (
    BACKDROP_RGB,
    DEFAULT_PALETTE,
    MIN_BACKDROP_OPACITY,
    NONE_STYLE,
    NOTE_COLOR,
    WCAG_AA,
    contrast_ratio,
    effective_backdrops,
    hex_to_rgb,
    relative_luminance,
    style_for,
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


def test_legend_note_color_has_aa_contrast():
    assert worst_case_contrast(hex_to_rgb(NOTE_COLOR), MIN_BACKDROP_OPACITY) >= WCAG_AA


def test_worst_case_contrast_can_fail():
    # Okabe–Ito's own vermillion is too dark for this backdrop: the check must catch it.
    assert worst_case_contrast((0xD5, 0x5E, 0x00), MIN_BACKDROP_OPACITY) < WCAG_AA
    # A text color between the two backdrop extremes has no guarantee at all.
    over_black, over_white = effective_backdrops(MIN_BACKDROP_OPACITY)
    assert worst_case_contrast(over_white) == 1.0
    assert relative_luminance(over_black) < relative_luminance(over_white)


def test_lowest_allowed_opacity_matches_the_palette_contract():
    meta = {f.name: f.metadata for f in fields(OverlaySettings)}
    assert meta["backdrop_opacity"]["min"] == MIN_BACKDROP_OPACITY
    assert BACKDROP_RGB == (12, 12, 12)


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


def test_overlay_defaults_load(tmp_path):
    empty = tmp_path / "config.toml"
    empty.write_text("")
    s = load_settings(empty)
    assert s.overlay.position == "bottom-center" and s.overlay.monitor == -1
    assert s.hotkey.combo == "<ctrl>+<alt>+space" and s.hotkey.style == "hold"
