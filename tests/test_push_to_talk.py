"""Push-to-talk gate: hold and toggle styles, pre-roll, post-roll, auto-repeat, late audio."""

from __future__ import annotations

import numpy as np
import pytest

from subtone.service.events import AudioBlock, UtteranceAudio, UtteranceEnded, UtteranceStarted
from subtone.service.trigger.push_to_talk import PushToTalkGate

BLOCK = 480  # 30 ms


def blocks(t0: float, t1: float):
    """30 ms blocks covering [t0, t1), each filled with its own start time (to see which arrived)."""
    t = t0
    while t < t1 - 1e-9:
        yield AudioBlock(np.full(BLOCK, t, dtype=np.float32), t)
        t = round(t + 0.03, 6)


def feed(gate, t0, t1):
    events = []
    for b in blocks(t0, t1):
        events += gate.push(b)
    return events


def audio_of(events, uid):
    return np.concatenate([e.samples for e in events if isinstance(e, UtteranceAudio) and e.utterance_id == uid])


def test_hold_press_starts_release_ends_with_pre_and_post_roll():
    gate = PushToTalkGate("hold", pre_roll_ms=200, post_roll_ms=150)
    events = feed(gate, 0.0, 1.0)
    assert events == []
    gate.press(1.0)
    events = feed(gate, 1.0, 2.0)
    gate.release(2.0)
    events += feed(gate, 2.0, 3.0)
    starts = [e for e in events if isinstance(e, UtteranceStarted)]
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(starts) == 1 and len(ends) == 1
    assert starts[0].source == "hotkey" and ends[0].reason == "released"
    assert starts[0].t_start == pytest.approx(0.81, abs=0.031)  # 200 ms before the press
    assert ends[0].t_end == pytest.approx(2.15)
    times = np.unique(audio_of(events, starts[0].utterance_id))
    assert times.min() == pytest.approx(0.81, abs=0.031) and times.max() < 2.15
    assert not gate.is_open


def test_key_events_before_their_audio_arrives_still_line_up():
    """The press is seen before the microphone's blocks for that moment come in: nothing is cut."""
    gate = PushToTalkGate("hold", pre_roll_ms=0, post_roll_ms=0)
    feed(gate, 0.0, 0.5)
    gate.press(1.0)
    gate.release(2.0)
    events = feed(gate, 0.5, 3.0)
    times = np.unique(audio_of(events, 1))
    assert times.min() == pytest.approx(0.99, abs=0.031) and times.max() == pytest.approx(1.98, abs=0.031)


def test_auto_repeat_presses_are_ignored_when_holding():
    gate = PushToTalkGate("hold")
    gate.press(1.0)
    for i in range(9):
        gate.press(1.1 + i * 0.03)  # the X server's auto-repeat
    gate.release(2.0)
    events = feed(gate, 0.5, 3.0)
    assert sum(isinstance(e, UtteranceStarted) for e in events) == 1
    assert sum(isinstance(e, UtteranceEnded) for e in events) == 1


def test_toggle_press_starts_next_press_ends_release_ignored():
    gate = PushToTalkGate("toggle", pre_roll_ms=0, post_roll_ms=0)
    gate.press(1.0)
    gate.release(1.1)
    events = feed(gate, 0.5, 2.0)
    assert [type(e).__name__ for e in events if not isinstance(e, UtteranceAudio)] == ["UtteranceStarted"]
    assert gate.is_open
    gate.press(2.5)
    gate.release(2.6)
    events += feed(gate, 2.0, 3.5)
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(ends) == 1 and ends[0].t_end == pytest.approx(2.5)
    gate.press(4.0)
    events = feed(gate, 3.5, 4.5)
    assert [e.utterance_id for e in events if isinstance(e, UtteranceStarted)] == [2]


def test_tick_ends_an_utterance_when_no_audio_comes():
    gate = PushToTalkGate("hold", post_roll_ms=100)
    gate.press(1.0)
    feed(gate, 0.9, 1.5)
    gate.release(1.5)
    assert gate.tick(1.55) == []
    (end,) = gate.tick(2.5)
    assert isinstance(end, UtteranceEnded) and end.t_end == pytest.approx(1.6)


def test_stop_ends_the_open_utterance_and_forgets_pending_keys():
    gate = PushToTalkGate("hold")
    gate.press(1.0)
    feed(gate, 0.9, 1.5)
    (end,) = gate.stop(1.5)
    assert end.reason == "stopped" and not gate.is_open
    gate.release(1.6)
    assert not [e for e in feed(gate, 1.5, 2.5) if not isinstance(e, UtteranceAudio)]


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="push-to-talk style"):
        PushToTalkGate("tap")
