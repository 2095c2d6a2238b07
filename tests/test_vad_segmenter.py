"""The voice trigger's state machine on real speech (../shared/data) and on synthetic silence/noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import ASR_DEV
from subtone.config import load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.events import AudioBlock, UtteranceAudio, UtteranceEnded, UtteranceStarted
from subtone.service.trigger.vad_segmenter import TOO_SHORT, VadSegmenter, VadState

CLIP = ASR_DEV / "en" / "ljspeech" / "LJ001-0001.flac"  # 9.7 s, no long pauses
SHORT_CLIP = ASR_DEV / "en" / "ljspeech" / "LJ001-0002.flac"  # 1.9 s

RNG = np.random.default_rng(7)


def vad_settings(**changes):
    return dataclasses.replace(load_settings(user_file=None).vad, **changes)


def pink_noise(seconds: float, dbfs: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(RNG.standard_normal(n))
    f = np.arange(spectrum.size, dtype=float)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return (noise / noise.std() * 10 ** (dbfs / 20)).astype(np.float32)


def white_noise(seconds: float, dbfs: float) -> np.ndarray:
    return (RNG.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def run(audio: np.ndarray, settings=None, block=480):
    seg = VadSegmenter(settings or vad_settings())
    events = []
    for i in range(0, len(audio), block):
        events += seg.push(AudioBlock(audio[i : i + block], i / SAMPLE_RATE))
    return seg, events


def utterances(events):
    """(t_start, t_end, reason, audio) per utterance, in order."""
    out, open_ = [], {}
    for e in events:
        if isinstance(e, UtteranceStarted):
            open_[e.utterance_id] = (e.t_start, [])
        elif isinstance(e, UtteranceAudio):
            open_[e.utterance_id][1].append(e.samples)
        elif isinstance(e, UtteranceEnded):
            t0, chunks = open_.pop(e.utterance_id)
            audio = np.concatenate(chunks) if chunks else np.zeros(0)
            if e.reason == "max_length":  # the contract: audio past a split's end starts the next utterance
                audio = audio[: round((e.t_end - t0) * SAMPLE_RATE)]
            out.append((t0, e.t_end, e.reason, audio))
    return out


def test_real_speech_padded_with_silence_is_one_utterance_that_covers_it():
    speech = load_audio(CLIP)
    seg, events = run(np.concatenate([silence(2.0), speech, silence(2.0)]))
    found = utterances(events)
    assert len(found) == 1, [(u[0], u[1], u[2]) for u in found]
    t0, t1, reason, audio = found[0]
    assert reason == "silence"
    assert 1.6 <= t0 <= 2.1  # speech starts at 2.0 s; the pre-roll reaches back up to 0.3 s
    assert 2.0 + len(speech) / SAMPLE_RATE - 0.5 <= t1 <= 2.0 + len(speech) / SAMPLE_RATE + 0.5
    assert abs(len(audio) / SAMPLE_RATE - (t1 - t0)) < 0.05  # the audio is exactly the span reported
    assert seg.state is VadState.QUIET


def test_first_syllable_is_kept_by_the_pre_roll():
    speech = load_audio(SHORT_CLIP)
    _, events = run(np.concatenate([silence(1.0), speech, silence(1.0)]))
    (t0, _, _, audio), = utterances(events)
    onset = int(np.argmax(np.abs(speech) > 0.02))  # first clearly audible sample
    assert t0 <= 1.0 + onset / SAMPLE_RATE - 0.1


@pytest.mark.parametrize("source", ["digital zeros", "quiet dither"])
def test_thirty_seconds_of_silence_gives_nothing(source):
    audio = silence(30) if source == "digital zeros" else white_noise(30, -75)
    seg, events = run(audio)
    assert events == []
    assert seg.state is VadState.QUIET


@pytest.mark.parametrize("kind,dbfs", [("white", -20), ("pink", -20), ("pink", -35), ("white", -45)])
def test_thirty_seconds_of_steady_noise_gives_nothing_even_at_its_onset(kind, dbfs):
    noise = white_noise(30, dbfs) if kind == "white" else pink_noise(30, dbfs)
    _, events = run(np.concatenate([silence(2.0), noise]))
    assert utterances(events) == []


def test_webrtcvad_alone_would_call_that_noise_speech():
    """The gate is needed: without the margin and modulation checks loud noise starts an utterance."""
    ungated = vad_settings(noise_margin_db=0.0, start_modulation_db=0.0, noise_floor_window_s=0.3)
    _, events = run(np.concatenate([silence(2.0), white_noise(10, -20)]), ungated)
    assert utterances(events) or any(isinstance(e, UtteranceStarted) for e in events)


def test_speech_in_steady_noise_is_still_found():
    speech = load_audio(CLIP)
    audio = np.concatenate([silence(2.0), speech, silence(2.0)])
    audio = audio + pink_noise(len(audio) / SAMPLE_RATE, -45)
    found = [u for u in utterances(run(audio)[1]) if u[2] != TOO_SHORT]
    assert len(found) == 1


def test_long_speech_is_split_at_its_quietest_point_near_the_maximum_length_without_losing_audio():
    speech = load_audio(CLIP)
    audio = np.concatenate([silence(1.0), speech, silence(1.5)])
    found = utterances(run(audio, vad_settings(max_utterance_s=4.0))[1])
    assert [u[2] for u in found][:2] == ["max_length", "max_length"]
    assert found[-1][2] == "silence"
    for (_, end, _, _), (start, _, _, _) in zip(found, found[1:]):
        assert start == pytest.approx(end, abs=1e-6)  # back to back
    assert all(len(u[3]) / SAMPLE_RATE <= 4.0 + 0.031 for u in found)
    total = sum(len(u[3]) for u in found)
    assert total / SAMPLE_RATE == pytest.approx(found[-1][1] - found[0][0], abs=0.05)
    frame = SAMPLE_RATE * 30 // 1000
    for t0, t_split, reason, _ in found[:-1]:
        assert t0 + 4.0 - 2.1 <= t_split <= t0 + 4.0 + 0.031  # near the limit
        at = round(t_split * SAMPLE_RATE)
        level = lambda i: float(np.sqrt(np.mean(audio[i : i + frame] ** 2)) + 1e-9)  # noqa: E731
        window = [level(i) for i in range(round((t0 + 4.0 - 2.0) * SAMPLE_RATE), round((t0 + 4.0) * SAMPLE_RATE), frame)]
        assert level(at) <= np.percentile(window, 10)  # at a pause, not mid-word


def test_a_blip_is_dropped_as_too_short():
    blip = load_audio(CLIP)[int(0.5 * SAMPLE_RATE) : int(0.75 * SAMPLE_RATE)]  # 250 ms of a word
    _, events = run(np.concatenate([silence(1.0), blip, silence(1.5)]), vad_settings(min_speech_ms=400))
    found = utterances(events)
    assert found and all(u[2] == TOO_SHORT for u in found)


def test_flush_ends_an_open_utterance():
    speech = load_audio(CLIP)
    seg, events = run(np.concatenate([silence(1.0), speech[: 3 * SAMPLE_RATE]]))
    assert seg.in_utterance
    end = seg.flush(99.0)
    assert isinstance(end[0], UtteranceEnded) and end[0].reason == "stopped"
    assert seg.state is VadState.QUIET and seg.flush(100.0) == []


def test_block_size_does_not_matter():
    speech = load_audio(SHORT_CLIP)
    audio = np.concatenate([silence(1.0), speech, silence(1.0)])
    a = [(round(u[0], 3), round(u[1], 3)) for u in utterances(run(audio, block=480)[1])]
    b = [(round(u[0], 3), round(u[1], 3)) for u in utterances(run(audio, block=1234)[1])]
    assert a == b and len(a) == 1


def test_a_steady_noise_starting_anywhere_in_a_frame_starts_no_utterance():
    """A fan switching on: its first, partly filled frame must not pass for a rising syllable."""
    settings = vad_settings()
    n = 3 * SAMPLE_RATE
    fan = pink_noise(3.0, -27.0)
    frame = SAMPLE_RATE * settings.frame_ms // 1000
    started = []
    for offset in range(0, frame, 4):
        audio = np.concatenate([np.zeros(n - frame + offset, np.float32), fan])
        _, events = run(audio, settings, block=len(audio))
        if any(isinstance(e, UtteranceStarted) for e in events):
            started.append(offset)
    assert started == []
