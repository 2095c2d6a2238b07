"""An utterance's encoder states → one fixed-length vector: mean and spread over its voiced frames.

Which frames are voiced is decided relative to the utterance's own loudest frame, so turning
the volume up or down selects the same frames (level invariance by design). Silence before and
after the words (push-to-talk pre-roll, the trimmed window's padding) is left out: it says
nothing about the speaker's state and would dilute the mean.
"""

from __future__ import annotations

import numpy as np

FRAME_SAMPLES = 320
"""One Whisper encoder frame: two 10 ms mel hops (the encoder's stride-2 convolution)."""
VOICED_RANGE_DB = 35.0
"""A frame is voiced when its energy is within this many dB of the utterance's loudest frame."""


def frame_count(samples: int) -> int:
    """Encoder frames that hold real audio (the rest of a window is padding)."""
    return samples // FRAME_SAMPLES


def voiced_weights(audio: np.ndarray, frames: int) -> np.ndarray:
    """1.0 for each of the first `frames` encoder frames that is voiced, else 0.0 (float32)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = min(frames, frame_count(audio.size))
    weights = np.zeros(frames, dtype=np.float32)
    if n == 0:
        return weights
    energy = (audio[: n * FRAME_SAMPLES].astype(np.float64).reshape(n, FRAME_SAMPLES) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-20)
    weights[:n] = db > db.max() - VOICED_RANGE_DB
    return weights


def pool(states: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[frames, D] states → [2·D]: weighted mean, then weighted standard deviation."""
    states = np.asarray(states, dtype=np.float32)
    n = min(states.shape[0], weights.shape[0])
    x, w = states[:n], weights[:n, None].astype(np.float32)
    total = float(w.sum())
    if total <= 0:
        w, total = np.ones_like(w), float(n)
    mean = (w * x).sum(axis=0) / total
    std = np.sqrt((w * (x - mean) ** 2).sum(axis=0) / total + 1e-6)
    return np.concatenate([mean, std]).astype(np.float32)


def voiced_seconds(audio: np.ndarray) -> float:
    """How much of `audio` is voiced (relative to its own loudest frame), in seconds."""
    audio = np.asarray(audio).reshape(-1)
    return float(voiced_weights(audio, frame_count(audio.size)).sum()) * FRAME_SAMPLES / 16_000
