"""The seam between the voice trigger's state machine and whatever judges a frame to be voice.

A detector says, for one frame of 16 kHz mono float32 (10, 20 or 30 ms), how confident it is
that someone speaks in it (0..1). The state machine (vad_segmenter) adds the noise gate and the
start/end rules; a second detector (e.g. Silero VAD for music and TV, which webrtcvad takes for
speech) plugs in here without touching it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from subtone.service.audio import SAMPLE_RATE


class VoiceDetector(Protocol):
    def voice_confidence(self, frame: np.ndarray) -> float:
        """0.0 (no voice) .. 1.0 (voice) for one frame."""
        ...


class WebRtcVoiceDetector:
    """webrtcvad's yes/no verdict (0.0 or 1.0); `aggressiveness` 0..3, higher rejects more non-speech."""

    def __init__(self, aggressiveness: int) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def voice_confidence(self, frame: np.ndarray) -> float:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, SAMPLE_RATE) else 0.0
