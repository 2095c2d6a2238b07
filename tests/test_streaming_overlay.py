"""The overlay draws a partial's settled words (Caption.stable_text) upright and only its tentative
tail in italics, across wrapped rows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from x11_env import process_events_for

from subtone.config.settings import DEFAULT_TOML, Settings, _build, _read_toml
from subtone.service.events import Caption

pytestmark = pytest.mark.desktop

WORDS = "and so my fellow Americans ask not what your country can do for you ask what you can do".split()


@pytest.fixture()
def overlay(window_manager, qapp):
    from subtone.overlay.window import CaptionOverlay

    settings = replace(_build(Settings, _read_toml(DEFAULT_TOML)).overlay, width=0.3, lines=6, caption_seconds=60.0)
    widget = CaptionOverlay(settings)
    yield widget
    widget.close()
    widget.deleteLater()
    process_events_for(0.05)


def partial(stable_words: int) -> Caption:
    return Caption(1, " ".join(WORDS), False, 0.0, 1.0, "neutral", stable_text=" ".join(WORDS[:stable_words]))


def test_settled_words_of_a_wrapped_partial_are_marked_row_by_row(overlay):
    overlay.show_caption(partial(12))
    process_events_for(0.05)
    rows = overlay._rows()
    assert len(rows) >= 2, [r.text for r in rows]  # narrow box: the caption wraps
    settled = [w for r in rows for w in r.text.split()[: r.stable]]
    assert settled == WORDS[:12]
    for r in rows:  # settled words are always a prefix of the caption, row by row
        assert r.stable <= len(r.text.split())
    final = replace(partial(0), is_final=True, stable_text=" ".join(WORDS))
    overlay.show_caption(final)
    assert all(r.stable == 0 for r in overlay._rows())  # a final is drawn upright anyway


def test_settled_words_look_different_from_tentative_ones(overlay):
    overlay.show_caption(partial(0))
    process_events_for(0.05)
    all_tentative = overlay.grab().toImage()
    overlay.show_caption(partial(len(WORDS)))
    process_events_for(0.05)
    all_settled = overlay.grab().toImage()
    assert all_tentative != all_settled
