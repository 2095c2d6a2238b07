"""Partial captions for one open utterance: when to re-decode, and what to show.

The recognizer worker re-decodes an open utterance's audio so far every `interval_s` of new
audio (never before `min_audio_s`), caps the tokens a partial may hold (a decoder that sees
speech cut off mid-word tends to loop), strips a trailing loop if one slips through, keeps the
shown words steady with PartialStabilizer and the emotion color steady with EmotionHysteresis.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from subtone.config.settings import StreamingSettings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.emotion.smoothing import EmotionHysteresis, HysteresisParams
from subtone.service.captioning.partial_text import PartialStabilizer, PartialText, word_key

MAX_LOOP_WORDS = 8
"""Longest repeated phrase (in words) that `strip_repeats` looks for."""
FINAL_TOKENS_PER_S = 12.0
"""Token cap of a final decode per second of audio (plus a few): about twice fast speech. Whisper
on audio cut off mid-word (a key released mid-sentence) can loop until its 224-token limit,
which costs seconds; the cap bounds that and `strip_repeats` removes the loop."""


@dataclass(frozen=True)
class PartialPolicy:
    interval_s: float = 0.5
    """Re-decode after this much new audio (s)."""
    min_audio_s: float = 1.0
    """No partial before the utterance has this much audio (s)."""
    max_tokens_per_s: float = 6.0
    """Token cap of a partial decode, per second of audio (plus a few)."""
    hysteresis: HysteresisParams = field(default_factory=HysteresisParams)

    @classmethod
    def from_settings(cls, s: StreamingSettings) -> "PartialPolicy | None":
        """None when streaming is off."""
        if not s.enabled:
            return None
        return cls(
            interval_s=s.partial_interval_s,
            min_audio_s=s.min_audio_for_partial_s,
            max_tokens_per_s=s.max_partial_tokens_per_s,
            hysteresis=HysteresisParams(s.emotion_smoothing, s.emotion_margin, s.emotion_hold_updates),
        )

    def is_due(self, samples: int, decoded_samples: int) -> bool:
        """Whether an utterance with `samples` of audio, last decoded at `decoded_samples`, needs a partial."""
        return samples >= self.min_audio_s * SAMPLE_RATE and samples - decoded_samples >= self.interval_s * SAMPLE_RATE

    def token_cap(self, samples: int) -> int:
        return 4 + math.ceil(self.max_tokens_per_s * samples / SAMPLE_RATE)


def strip_repeats(text: str, min_repeats: int = 1) -> str:
    """Cut a decoder loop off the end: "and so my fellow and so my fellow and so" → "and so my fellow".

    A loop of period p is a tail where every word equals the word p before it; it is cut when it
    holds at least `min_repeats` whole repeats of the phrase.
    """
    words = text.split()
    keys = [word_key(w) for w in words]
    best = len(words)
    for period in range(1, min(MAX_LOOP_WORDS, len(words) // 2) + 1):
        run = 0
        while run < len(words) - period and keys[-1 - run] == keys[-1 - run - period]:
            run += 1
        if run >= min_repeats * period:
            best = min(best, len(words) - run)
    return " ".join(words[:best])


def final_token_cap(samples: int) -> int:
    return 8 + math.ceil(FINAL_TOKENS_PER_S * samples / SAMPLE_RATE)


@dataclass(frozen=True)
class TranscriberCaps:
    """Which optional keywords a recognizer's `transcribe` takes (Whisper takes both)."""

    max_tokens: bool = False
    run_options: bool = False
    """An onnxruntime.RunOptions whose `terminate` aborts the decode from another thread."""

    @classmethod
    def of(cls, transcriber: Any) -> "TranscriberCaps":
        try:
            params = inspect.signature(transcriber.transcribe).parameters
        except (TypeError, ValueError):
            return cls()
        return cls("max_tokens" in params, "run_options" in params)


def new_run_options(caps: TranscriberCaps) -> Any:
    """A RunOptions for one partial decode (None when the recognizer cannot be interrupted)."""
    if not caps.run_options:
        return None
    import onnxruntime

    return onnxruntime.RunOptions()


class PartialTrack:
    """One open utterance's partial state: audio decoded so far, shown words, shown emotion."""

    def __init__(self, policy: PartialPolicy) -> None:
        self.decoded_samples = 0
        self.shown: PartialText | None = None
        self._stabilizer = PartialStabilizer()
        self._emotion = EmotionHysteresis(policy.hysteresis)

    def update_text(self, hypothesis: str) -> PartialText:
        self.shown = self._stabilizer.update(strip_repeats(hypothesis))
        return self.shown

    def update_emotion(self, scores: Mapping[str, float]) -> str:
        return self._emotion.update(scores)

    @property
    def emotion(self) -> str | None:
        return self._emotion.label


def decode_partial(
    transcriber: Any,
    audio: np.ndarray,
    policy: PartialPolicy,
    caps: TranscriberCaps,
    run_options: Any = None,
) -> str:
    """The raw hypothesis for the audio so far, with the token cap where the model supports it."""
    kwargs: dict[str, Any] = {}
    if caps.max_tokens:
        kwargs["max_tokens"] = policy.token_cap(audio.size)
    if run_options is not None:
        kwargs["run_options"] = run_options
    return transcriber.transcribe(audio, **kwargs).text.strip()

