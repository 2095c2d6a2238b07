"""One utterance → one feature vector from Whisper encoder states: what an emotion head reads.

Training (subtone.export.emotion.head_train) and the runtime call these same functions, so the
head sees at run time exactly what it was trained on. The encoder window is the recognizer's
own trimmed window (`trimmed_window_frames`) of the audio at one loudness
(subtone.service.asr.whisper.level, as the recognizer with `normalize_level` hears it), so states
computed by the recognizer for its decode (shared path) and by the emotion model's own encoder
session (standalone) are the same, and the same at any volume.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from subtone.service.asr.whisper.frontend import CHUNK_FRAMES, HOP_LENGTH, log_mel
from subtone.service.asr.whisper.level import normalised
from subtone.service.asr.whisper.recognizer import trimmed_window_frames
from subtone.service.emotion.pooling import frame_count, pool, voiced_weights


def encoder_window(audio: np.ndarray) -> np.ndarray:
    """The log-mel window [1, 80, F] the recognizer's encoder sees for the first 30 s of `audio`."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    content = min(audio.size // HOP_LENGTH, CHUNK_FRAMES)
    frames = trimmed_window_frames(content)
    return np.ascontiguousarray(log_mel(normalised(audio))[None, :, :frames])


def run_encoder(session, names: Sequence[str], audio: np.ndarray) -> dict[str, np.ndarray]:
    """The encoder's `names` outputs for `audio`, [frames, width] each, audio frames only."""
    outputs = session.run(list(names), {"mel": encoder_window(audio)})
    n = frame_count(min(np.asarray(audio).size, CHUNK_FRAMES * HOP_LENGTH))
    return {name: value[0, :n] for name, value in zip(names, outputs)}


def pooled_features(states: Mapping[str, np.ndarray], names: Sequence[str], audio: np.ndarray) -> np.ndarray:
    """Each named layer's states pooled over the voiced frames (mean, then spread), concatenated in
    `names` order: [len(names) · 2 · width]."""
    frames = min(min(states[name].shape[0] for name in names), frame_count(np.asarray(audio).size))
    weights = voiced_weights(audio, frames)
    return np.concatenate([pool(states[name][:frames], weights) for name in names]).astype(np.float32)
