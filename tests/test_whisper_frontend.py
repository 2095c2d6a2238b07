"""Our numpy log-mel against two references: faster-whisper's extractor and Whisper's torch recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import JFK
from subtone.service.audio.file import load_audio
from subtone.service.asr.whisper.frontend import CHUNK_FRAMES, log_mel, mel_filters


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    return load_audio(JFK)


def _whisper_torch_log_mel(audio: np.ndarray) -> np.ndarray:
    """openai/whisper's log_mel_spectrogram(audio, padding=N_SAMPLES), rewritten with torch.stft."""
    x = torch.from_numpy(np.concatenate([audio, np.zeros(480_000, np.float32)]))
    stft = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(np.array(mel_filters())) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def test_filterbank_matches_faster_whisper():
    from faster_whisper.feature_extractor import FeatureExtractor

    ref = FeatureExtractor(feature_size=80).mel_filters
    assert mel_filters().shape == (80, 201)
    np.testing.assert_allclose(mel_filters(), ref, atol=1e-7)


def test_log_mel_matches_faster_whisper(jfk):
    from faster_whisper.feature_extractor import FeatureExtractor

    ref = FeatureExtractor(feature_size=80)(jfk, padding=480_000)
    ours = log_mel(jfk)
    assert ours.shape == ref.shape == (80, jfk.size // 160 + CHUNK_FRAMES)
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("seconds", [0.005, 0.3, 11.0])
def test_log_mel_matches_whisper_torch_recipe(jfk, seconds):
    audio = jfk[: int(seconds * 16000)]
    ref = _whisper_torch_log_mel(audio)
    ours = log_mel(audio)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


def test_silence_and_truncation():
    silent = log_mel(np.zeros(16000, np.float32))
    np.testing.assert_allclose(silent, -1.5, atol=1e-6)  # (log10(1e-10) + 4) / 4
    audio = np.random.default_rng(0).standard_normal(20_000).astype(np.float32) * 0.1
    full = log_mel(audio)
    head = log_mel(audio, n_frames=400)
    np.testing.assert_array_equal(head, full[:, :400])
