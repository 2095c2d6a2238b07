"""Reading audio files into the models' format: 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from subtone.service.errors import SubtoneError

from subtone.service.audio import SAMPLE_RATE


def to_model_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Down-mix to mono and resample to 16 kHz; returns float32."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE and audio.size:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return audio


def load_audio(path: str | Path) -> np.ndarray:
    """The file as 16 kHz mono float32 in [-1, 1]; a clear SubtoneError if it can't be read."""
    path = Path(path)
    if not path.exists():
        raise SubtoneError(f"audio file not found: {path}")
    if path.is_dir():
        raise SubtoneError(f"{path} is a folder; expected an audio file (WAV, FLAC, OGG, MP3)")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        size = path.stat().st_size
        what = "an empty file" if size == 0 else "not a readable audio file"
        raise SubtoneError(f"{path} is {what} ({exc}); expected WAV, FLAC, OGG or MP3 audio") from None
    return to_model_rate(samples, rate)
