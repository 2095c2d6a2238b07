"""Whisper's log-mel spectrogram in numpy, numerically the same recipe as openai/whisper.

Recipe: the audio is followed by 30 s of zeros; a centred STFT (reflect padding,
periodic Hann window, n_fft 400, hop 160), power spectrum without the last frame,
a Slaney-style mel filterbank (80 bands, 0–8 kHz), log10 clamped to ≥ 1e-10 and to
≥ (global max − 8), then (x + 4) / 4.

Frames that lie wholly in the zero padding have a known value, so only frames that
touch real audio go through the FFT: cost grows with the audio, not with the 30 s pad.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
CHUNK_SAMPLES = 30 * SAMPLE_RATE
CHUNK_FRAMES = CHUNK_SAMPLES // HOP_LENGTH  # 3000
LOG_FLOOR = -10.0  # log10(1e-10)


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_region = freq >= min_log_hz
    mels[log_region] = min_log_mel + np.log(freq[log_region] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_region = mels >= min_log_mel
    freqs[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return freqs


@lru_cache(maxsize=4)
def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular filters [n_mels, n_fft // 2 + 1], as librosa.filters.mel builds them."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sample_rate / 2]))[0], n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=2)
def _hann(n_fft: int) -> np.ndarray:
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    window.setflags(write=False)
    return window


def log_mel(audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """Log-mel [80, F] of 16 kHz mono audio followed by 30 s of silence, as Whisper computes it.

    F defaults to len(audio) // 160 + 3000 (Whisper's padded length); a smaller
    `n_frames` returns the first frames only (the global max still covers all audio).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    total = audio.size // HOP_LENGTH + CHUNK_FRAMES
    n_frames = total if n_frames is None else n_frames
    # Frame t spans samples [t·hop − n_fft/2, t·hop + n_fft/2); later frames see only zeros.
    live = min(total, (audio.size + N_FFT // 2) // HOP_LENGTH + 1)
    half = N_FFT // 2
    signal = np.zeros(half + live * HOP_LENGTH + half, dtype=np.float32)
    body = np.concatenate([audio, np.zeros(half + 1, dtype=np.float32)])
    signal[:half] = body[1 : half + 1][::-1]  # reflect padding on the left
    n_body = min(body.size, signal.size - half)
    signal[half : half + n_body] = body[:n_body]
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP_LENGTH][:live]
    spectrum = np.fft.rfft(frames * _hann(N_FFT), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power.astype(np.float32) @ mel_filters().T  # [live, 80]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    peak = max(float(log_spec.max()) if log_spec.size else LOG_FLOOR, LOG_FLOOR)
    floor = peak - 8.0
    out = np.full((N_MELS, n_frames), (max(LOG_FLOOR, floor) + 4.0) / 4.0, dtype=np.float32)
    keep = min(live, n_frames)
    out[:, :keep] = (np.maximum(log_spec[:keep].T, floor) + 4.0) / 4.0
    return out
