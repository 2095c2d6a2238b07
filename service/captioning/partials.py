"""Partial captions for one open utterance: when to re-decode, and what to show.

The recognizer worker re-decodes an open utterance's audio so far every `interval_s` of new
audio (never before `min_audio_s`); PartialTrack keeps the shown words steady with
PartialStabilizer and the emotion color steady with EmotionHysteresis. Token caps and loop
guards for audio cut off mid-word belong to the recognizer (`transcribe(partial=True)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from subtone.config.settings import StreamingSettings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.captioning.partial_text import PartialStabilizer, PartialText
from subtone.service.emotion.pooling import voiced_seconds
from subtone.service.emotion.smoothing import EmotionHysteresis, HysteresisParams


@dataclass(frozen=True)
class PartialPolicy:
    interval_s: float = 0.5
    """Re-decode after this much new audio (s)."""
    min_audio_s: float = 1.0
    """No partial before the utterance has this much audio (s)."""
    hysteresis: HysteresisParams = field(default_factory=HysteresisParams)
    emotion_min_voiced_s: float = 1.0
    """No emotion on a partial before this much voiced audio (s): less is a guess that flickers."""

    @classmethod
    def from_settings(cls, s: StreamingSettings) -> "PartialPolicy | None":
        """None when streaming is off."""
        if not s.enabled:
            return None
        return cls(
            interval_s=s.partial_interval_s,
            min_audio_s=s.min_audio_for_partial_s,
            hysteresis=HysteresisParams(s.emotion_smoothing, s.emotion_margin, s.emotion_hold_updates),
        )

    def is_due(self, samples: int, decoded_samples: int) -> bool:
        """Whether an utterance with `samples` of audio, last decoded at `decoded_samples`, needs a partial."""
        return samples >= self.min_audio_s * SAMPLE_RATE and samples - decoded_samples >= self.interval_s * SAMPLE_RATE


class PartialTrack:
    """One open utterance's partial state: audio decoded so far, shown words, shown emotion."""

    def __init__(self, policy: PartialPolicy) -> None:
        self.decoded_samples = 0
        self.shown: PartialText | None = None
        self._stabilizer = PartialStabilizer()
        self._emotion = EmotionHysteresis(policy.hysteresis)
        self._min_voiced_s = policy.emotion_min_voiced_s
        self._changes = 0

    def emotion_due(self, audio: np.ndarray) -> bool:
        """Whether the audio so far holds enough voiced speech to judge its emotion."""
        return voiced_seconds(audio) >= self._min_voiced_s

    def update_text(self, hypothesis: str) -> PartialText:
        self.shown = self._stabilizer.update(hypothesis)
        return self.shown

    def update_emotion(self, scores: Mapping[str, float]) -> str:
        before = self._emotion.label
        after = self._emotion.update(scores)
        self._changes += before is not None and after != before
        return after

    def label_changes(self, final_label: str | None) -> int:
        """How often the shown color changed in this utterance, counting the final's (None: no color)."""
        shown = self._emotion.label
        return self._changes + (shown is not None and final_label != shown)

    @property
    def emotion(self) -> str | None:
        return self._emotion.label
