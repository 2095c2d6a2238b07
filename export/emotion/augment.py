"""Waveform augmentation for training: level, noise, speed, colouration, and surrounding silence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    max_crop_s: float = 3.0
    gain_db: float = 20.0
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (10.0, 40.0)
    speed: tuple[float, float] = (0.9, 1.1)
    tilt: float = 0.5
    """Random first-order pre/de-emphasis coefficient in ±tilt: a crude microphone/room colouration."""
    pad_prob: float = 0.5
    pad_max_s: float = 0.5


def augment(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, rate: int = 16_000) -> np.ndarray:
    x = audio.astype(np.float32)
    speed = rng.uniform(*cfg.speed)
    if abs(speed - 1) > 1e-3 and x.size > 1:
        n = max(int(x.size / speed), 1)
        x = np.interp(np.linspace(0, x.size - 1, n), np.arange(x.size), x).astype(np.float32)
    crop = int(cfg.max_crop_s * rate)
    if x.size > crop:
        start = rng.integers(0, x.size - crop + 1)
        x = x[start:start + crop]
    a = rng.uniform(-cfg.tilt, cfg.tilt)
    x = np.concatenate([x[:1], x[1:] - a * x[:-1]]).astype(np.float32)
    rms = float(np.sqrt(np.mean(x ** 2)) + 1e-9)
    if rng.random() < cfg.pad_prob:
        lead, tail = (rng.uniform(0, cfg.pad_max_s, 2) * rate).astype(int)
        x = np.concatenate([np.zeros(lead, np.float32), x, np.zeros(tail, np.float32)])
        x += rng.standard_normal(x.size).astype(np.float32) * rms * 10 ** (-rng.uniform(35, 60) / 20)
    if rng.random() < cfg.noise_prob:
        noise = rng.standard_normal(x.size).astype(np.float32)
        if rng.random() < 0.5:  # pinkish: integrate white noise a little
            noise = np.cumsum(noise) * 0.05 + noise * 0.5
            noise -= noise.mean()
        noise *= rms / (np.sqrt(np.mean(noise ** 2)) + 1e-9) * 10 ** (-rng.uniform(*cfg.snr_db) / 20)
        x = x + noise
    return (x * 10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20)).astype(np.float32)


def pad_batch(waves: list[np.ndarray]) -> np.ndarray:
    """Zero-pad to the longest; the front end masks the padding out (it is below its energy floor)."""
    n = max(w.size for w in waves)
    out = np.zeros((len(waves), n), np.float32)
    for i, w in enumerate(waves):
        out[i, : w.size] = w
    return out
