"""Session adaptation and voiced-frame pooling for the encoder emotion head: pure numpy logic."""

import numpy as np
import pytest

from subtone.service.emotion.adaptation import AdaptationParams, FeatureStats, SessionAdaptation, blend
from subtone.service.emotion.pooling import FRAME_SAMPLES, pool, voiced_weights

PRIOR = FeatureStats(np.zeros(3, np.float32), np.ones(3, np.float32))


def test_a_new_session_is_judged_by_the_prior():
    s = SessionAdaptation(PRIOR)
    assert s.stats() is PRIOR
    assert s.count == 0


def test_an_utterance_is_judged_without_itself():
    s = SessionAdaptation(PRIOR, AdaptationParams(prior_weight=1.0, memory=1e9))
    s.observe(np.array([4.0, 4.0, 4.0]))
    before = s.stats().mean.copy()
    s.observe(np.array([100.0, 100.0, 100.0]))
    assert before == pytest.approx([2.0, 2.0, 2.0])  # half prior (0), half the first utterance (4)
    assert s.stats().mean[0] > before[0]


def test_session_statistics_take_over_as_the_session_grows():
    rng = np.random.default_rng(0)
    s = SessionAdaptation(PRIOR, AdaptationParams(prior_weight=8.0, memory=1e9))
    voice = rng.normal(5.0, 2.0, size=(400, 3))
    for x in voice:
        s.observe(x)
    st = s.stats()
    assert st.mean == pytest.approx(voice.mean(0), abs=0.2)
    assert st.std == pytest.approx(voice.std(0), abs=0.3)


def test_blend_is_the_mixture_of_prior_and_session():
    rng = np.random.default_rng(1)
    prior = FeatureStats(np.array([0.0]), np.array([1.0]))
    got = blend(prior, np.array([3.0]), np.array([4.0]), count=8.0, prior_weight=8.0)
    sample = np.concatenate([rng.normal(0, 1, 200_000), rng.normal(3, 2, 200_000)])
    assert got.mean[0] == pytest.approx(sample.mean(), abs=0.02)
    assert got.std[0] == pytest.approx(sample.std(), abs=0.02)


def test_old_voices_fade_so_a_new_speaker_takes_over():
    s = SessionAdaptation(PRIOR, AdaptationParams(prior_weight=8.0, memory=16.0))
    for _ in range(200):
        s.observe(np.full(3, -10.0))
    fresh = SessionAdaptation(PRIOR, AdaptationParams(prior_weight=8.0, memory=16.0))
    for _ in range(100):
        s.observe(np.full(3, 10.0))
        fresh.observe(np.full(3, 10.0))
    # The first voice is forgotten; the prior keeps its 8 of (16 + 8) pseudo-utterances.
    assert s.stats().mean == pytest.approx(fresh.stats().mean, abs=0.05)
    assert s.stats().mean[0] == pytest.approx(10.0 * 16 / 24, abs=0.05)
    s.reset()
    assert s.stats() is PRIOR


def _tone(seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_voiced_frames_are_the_same_at_any_volume_and_exclude_silence():
    audio = np.concatenate([np.zeros(16_000, np.float32), _tone(1.0, 0.3), np.zeros(8_000, np.float32)])
    frames = audio.size // FRAME_SAMPLES + 20  # a padded window has more frames than audio
    w = voiced_weights(audio, frames)
    assert w[:45].sum() == 0 and w[55:95].all() and w[105:].sum() == 0
    for gain in (0.01, 10.0):
        assert np.array_equal(voiced_weights(audio * gain, frames), w)


def test_pool_is_mean_and_spread_over_voiced_frames_only():
    states = np.arange(12, dtype=np.float32).reshape(6, 2)
    w = np.array([0, 1, 1, 1, 0, 0], np.float32)
    got = pool(states, w)
    voiced = states[1:4]
    assert got[:2] == pytest.approx(voiced.mean(0))
    assert got[2:] == pytest.approx(voiced.std(0), abs=1e-3)
    assert pool(states, np.zeros(6, np.float32))[:2] == pytest.approx(states.mean(0))
