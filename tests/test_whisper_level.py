"""Loudness normalisation before Whisper's encoder (subtone.service.asr.whisper.level)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import EMOTION_DATA, JFK
from subtone.config import load_settings
from subtone.export.evaluation.text_normalize import normalize_english
from subtone.service.asr.recognizer import create_recognizer
from subtone.service.asr.whisper.level import MAX_BOOST_DB, TARGET_DBFS, loud_frames_dbfs, normalised
from subtone.service.audio.file import load_audio
from subtone.service.models.registry import load_model


def test_the_same_speech_at_any_volume_is_scaled_to_the_same_level():
    speech = load_audio(EMOTION_DATA / "ravdess" / "Actor_09" / "03-01-05-02-01-01-09.flac")
    reference = normalised(speech)
    assert loud_frames_dbfs(reference) == pytest.approx(TARGET_DBFS, abs=0.01)
    for gain_db in (-20.0, -10.0, 10.0):
        louder = (speech * 10 ** (gain_db / 20)).astype(np.float32)
        assert np.abs(normalised(louder) - reference).max() < 1e-5


def test_near_silence_is_not_blown_up_and_silence_is_left_alone():
    hiss = (np.random.default_rng(0).standard_normal(16_000) * 1e-5).astype(np.float32)  # ≈ −100 dBFS
    boosted = normalised(hiss)
    assert loud_frames_dbfs(boosted) - loud_frames_dbfs(hiss) == pytest.approx(MAX_BOOST_DB, abs=0.01)
    assert loud_frames_dbfs(boosted) < TARGET_DBFS - 10
    silence = np.zeros(8_000, np.float32)
    assert normalised(silence) is silence


def _noises() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(48_000) / 16_000
    hum = np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    hum[::4000] += 5  # clicks
    out = {}
    for level in (-55, -45, -35, -25):
        for name, wave in (("white", rng.standard_normal(48_000)), ("hum", hum)):
            out[f"{name}{level}"] = (wave / np.sqrt(np.mean(wave**2)) * 10 ** (level / 20)).astype(np.float32)
    return out


def test_normalised_whisper_base_still_hears_no_words_in_noise_and_the_same_words_in_speech(default_models):
    """Boosting quiet input must not wake the decoder on noise (measured: 0 of 8 noises gave text
    with normalisation, 2 without), and JFK read quietly gives the words it gives at full level."""
    settings = load_settings(overrides={"models.dir": str(default_models), "runtime.providers": ["cpu"],
                                        "asr.whisper.normalize_level": True})
    recognizer = create_recognizer(load_model(default_models, "whisper-base-int8"), settings)
    heard = {name: recognizer.transcribe(wave).text for name, wave in _noises().items()}
    assert not any(heard.values()), heard
    jfk = load_audio(JFK)
    quiet, full = (normalize_english(recognizer.transcribe(a).text) for a in (jfk * 0.03, jfk))  # −30 dB
    assert quiet == full and "fellow americans" in full
