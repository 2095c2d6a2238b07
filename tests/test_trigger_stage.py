"""The trigger stage, pure: push-to-talk, voice and both modes, mode switches mid-utterance, listening off.

Audio is synthetic and the voice detector is scripted (a fake: it calls a frame voice when it is
loud), so these run in milliseconds; the real webrtcvad is tested in test_vad_segmenter.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from fakes import BLOCK_S, LoudIsVoice, quiet, talk
from subtone.config import load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.events import AudioBlock, UtteranceAudio, UtteranceEnded, UtteranceStarted
from subtone.service.trigger.stage import TriggerStage

BLOCK = round(BLOCK_S * SAMPLE_RATE)


class Run:
    """Feeds a stage block by block on a synthetic clock and collects its events."""

    def __init__(self, mode: str) -> None:
        settings = load_settings(overrides={"trigger.mode": mode})
        self.stage = TriggerStage.from_settings(settings, detector=LoudIsVoice())
        self.t = 100.0
        self.events: list = []

    def play(self, audio: np.ndarray) -> "Run":
        for i in range(0, len(audio) - BLOCK + 1, BLOCK):
            self.events += self.stage.push(AudioBlock(audio[i : i + BLOCK], self.t), self.t + BLOCK_S)
            self.t += BLOCK_S
        return self

    def utterances(self) -> list[tuple[str, float, float, str]]:
        """(source, seconds of audio, t_end, reason) per utterance."""
        out, audio, starts = [], {}, {}
        for e in self.events:
            if isinstance(e, UtteranceStarted):
                starts[e.utterance_id], audio[e.utterance_id] = e, 0
            elif isinstance(e, UtteranceAudio):
                audio[e.utterance_id] += e.samples.size
            elif isinstance(e, UtteranceEnded):
                out.append((starts[e.utterance_id].source, audio[e.utterance_id] / SAMPLE_RATE, e.t_end, e.reason))
        return out

    def open_ids(self) -> set[int]:
        started = {e.utterance_id for e in self.events if isinstance(e, UtteranceStarted)}
        return started - {e.utterance_id for e in self.events if isinstance(e, UtteranceEnded)}


def test_voice_mode_makes_one_utterance_of_speech_between_silences():
    run = Run("voice").play(quiet(2.0)).play(talk(1.5)).play(quiet(2.0))
    ((source, seconds, _, reason),) = run.utterances()
    assert source == "voice" and reason == "silence" and 1.4 < seconds < 2.5


def test_push_to_talk_mode_ignores_speech_without_the_key():
    run = Run("push-to-talk").play(quiet(1.0)).play(talk(1.5)).play(quiet(1.5))
    assert run.utterances() == [] and not run.stage.active


def test_push_to_talk_captures_from_press_to_release():
    run = Run("push-to-talk").play(quiet(1.0))
    run.stage.press(run.t)
    run.play(talk(1.0))
    run.stage.release(run.t)
    run.play(quiet(1.0))
    ((source, seconds, t_end, reason),) = run.utterances()
    assert source == "hotkey" and reason == "released" and 1.0 < seconds < 1.6


def test_a_press_in_voice_mode_or_while_not_listening_does_nothing():
    run = Run("voice").play(quiet(0.5))
    run.stage.press(run.t)
    assert not run.stage.gate.wants_open
    run = Run("push-to-talk")
    run.stage.set_listening(False)
    run.stage.press(run.t)
    assert not run.stage.gate.wants_open


def test_in_both_modes_the_hotkey_takes_over_a_voice_utterance():
    run = Run("both").play(quiet(2.0)).play(talk(1.0))
    (voice_id,) = run.open_ids()
    t_press = run.t
    run.stage.press(t_press)
    run.play(talk(1.0))
    run.stage.release(run.t)
    run.play(quiet(2.0))
    (voice, hotkey) = run.utterances()
    assert voice[0] == "voice" and voice[2] == pytest.approx(t_press, abs=0.05) and voice[3] == "stopped"
    assert hotkey[0] == "hotkey" and hotkey[3] == "released"


def test_switching_to_push_to_talk_mid_utterance_ends_the_voice_utterance_there():
    run = Run("voice").play(quiet(2.0)).play(talk(1.0))
    assert run.open_ids()
    t_switch = run.t
    run.stage.set_mode("push-to-talk")
    run.play(talk(1.0)).play(quiet(1.0))
    ((source, _, t_end, reason),) = run.utterances()
    assert source == "voice" and t_end == pytest.approx(t_switch) and reason == "stopped"
    assert not run.open_ids()


def test_switching_to_voice_mid_push_ends_the_hotkey_utterance_and_listens_for_voice():
    run = Run("push-to-talk").play(quiet(2.0))
    run.stage.press(run.t)
    run.play(talk(0.6))
    t_switch = run.t
    run.stage.set_mode("voice")
    run.play(quiet(2.0)).play(talk(1.5)).play(quiet(2.0))
    hotkey, voice = run.utterances()
    assert hotkey[0] == "hotkey" and hotkey[2] == pytest.approx(t_switch) and hotkey[3] == "stopped"
    assert voice[0] == "voice" and voice[3] == "silence"


def test_listening_off_ends_the_open_utterance_and_hears_nothing_more():
    run = Run("voice").play(quiet(2.0)).play(talk(1.0))
    t_off = run.t
    run.stage.set_listening(False)
    run.play(talk(2.0)).play(quiet(1.0))
    ((_, _, t_end, reason),) = run.utterances()
    assert t_end == pytest.approx(t_off) and reason == "stopped"


def test_without_audio_a_released_key_still_ends_the_utterance():
    run = Run("push-to-talk").play(quiet(0.5))
    run.stage.press(run.t)
    run.play(talk(0.5))
    t_release = run.t
    run.stage.release(t_release)
    assert run.stage.push(None, t_release + 0.1) == []  # the post-roll may still bring audio
    (end,) = run.stage.push(None, t_release + 1.0)
    assert isinstance(end, UtteranceEnded) and end.reason == "released"


def test_close_ends_everything_and_a_bad_mode_is_refused():
    run = Run("both").play(quiet(2.0)).play(talk(1.0))
    assert run.open_ids()
    run.events += run.stage.close(run.t)
    assert not run.open_ids() and not run.stage.active
    with pytest.raises(ValueError, match="trigger mode 'loud'"):
        run.stage.set_mode("loud")
