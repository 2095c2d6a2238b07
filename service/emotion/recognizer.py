"""Speech emotion from an utterance's audio, with the ONNX model named by `emotion.model`.

Very short or silent input has no emotion to read: `classify` returns None for it rather than a
guess (a caption without a colour is honest; a confident wrong colour is not).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from subtone.config import Settings
from subtone.service.errors import SubtoneError
from subtone.service.events import EMOTIONS, emotion_word
from subtone.service.models.registry import ModelEntry
from subtone.service.models.onnx_session import SessionInfo, create_session

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.3
"""Shorter utterances carry too little prosody to judge."""
STRONG_AT = 0.5
"""EmotionResult.intensity from which an emotion counts as strongly expressed (drawn heavier)."""
SILENCE_DBFS = -80.0
"""If the loudest 25 ms frame is below this, there is no voice to judge."""


@dataclass(frozen=True)
class EmotionResult:
    label: str
    """One of EMOTIONS: the most probable class."""
    scores: Mapping[str, float]
    """Probability per class, in EMOTIONS order; they sum to 1."""
    intensity: float | None = None
    """P(the emotion is strongly expressed); None when the model does not score intensity."""
    uncertain: bool = False
    """The probability of `label` is under [emotion] min_confidence: show no color for it."""

    @property
    def probability(self) -> float:
        return self.scores[self.label]


def too_little_signal(audio: np.ndarray) -> bool:
    """True for input shorter than MIN_SECONDS or whose loudest 25 ms frame is below SILENCE_DBFS."""
    if audio.size < MIN_SECONDS * SAMPLE_RATE:
        return True
    frame = SAMPLE_RATE // 40
    n = audio.size // frame
    power = (audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1)
    return 10 * np.log10(power.max() + 1e-20) < SILENCE_DBFS


class EmotionRecognizer:
    """Wraps one ONNX session: waveform [1, samples] → probabilities [1, 6]."""

    def __init__(self, name: str, session, session_info: SessionInfo, labels: tuple[str, ...],
                 min_confidence: float = 0.0) -> None:
        self.name = name
        self.session = session
        self.session_info = session_info
        self.labels = labels
        self.min_confidence = min_confidence
        self._input = session.get_inputs()[0].name

    @classmethod
    def from_entry(cls, entry: ModelEntry, settings: Settings) -> "EmotionRecognizer":
        if entry.task != "emotion":
            raise SubtoneError(f"model '{entry.name}' has task '{entry.task}'; expected an emotion model (task \"emotion\")")
        labels = tuple(entry.info.get("labels", ()))
        if labels != EMOTIONS:
            raise SubtoneError(
                f"model '{entry.name}' has labels {list(labels)}; expected {list(EMOTIONS)} in that order (re-export it)"
            )
        rate = entry.info.get("sample_rate", SAMPLE_RATE)
        if rate != SAMPLE_RATE:
            raise SubtoneError(f"model '{entry.name}' expects {rate} Hz audio; expected a {SAMPLE_RATE} Hz model")
        session, info = create_session(
            entry.path("model"), settings.runtime.providers, settings.runtime.threads, label=entry.name
        )
        return cls(entry.name, session, info, labels, settings.emotion.min_confidence)

    def classify(self, audio16k: np.ndarray, **context) -> EmotionResult | None:
        """The emotion of one utterance (16 kHz mono float32), or None when it is too short or silent.

        `context` (encoder_states, source, final) is for models that use it; this one judges the
        waveform alone."""
        audio = np.nan_to_num(np.asarray(audio16k, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        if too_little_signal(audio):
            return None
        try:
            probs = self.session.run(None, {self._input: audio[None, :]})[0][0].astype(float)
        except Exception as exc:  # ORT raises several types; a caption without emotion beats a crash
            log.warning("emotion model %s failed on a %.2f s utterance: %s", self.name, audio.size / SAMPLE_RATE, exc)
            return None
        scores = {label: float(p) for label, p in zip(self.labels, probs)}
        return EmotionResult(label=self.labels[int(np.argmax(probs))], scores=scores,
                             uncertain=bool(probs.max() < self.min_confidence))


def emotion_model(entry: ModelEntry, settings: Settings, transcriber=None):
    """The recognizer for an emotion model entry: a waveform model ("emotion") or a head on a
    speech model's encoder states ("emotion-head", sharing `transcriber`'s encoder when it can)."""
    if entry.family == "emotion-head":
        from subtone.service.emotion.head_recognizer import HeadEmotionRecognizer

        return HeadEmotionRecognizer.from_entry(entry, settings, transcriber)
    return EmotionRecognizer.from_entry(entry, settings)


def load_emotion_recognizer(settings: Settings, transcriber=None) -> tuple[object | None, str]:
    """The configured emotion model, or (None, why not) when it is disabled, missing or broken.

    Emotion is an extra on top of the text: its absence must never stop captions.
    """
    from subtone.service.models.registry import load_model

    if not settings.emotion.enabled:
        return None, ""
    try:
        entry = load_model(settings.models_dir(), settings.emotion.model)
        return emotion_model(entry, settings, transcriber), ""
    except SubtoneError as exc:
        return None, f"no emotion shown: {exc}"


def describe(result: EmotionResult | None) -> str:
    """'angry 83%' for a caption line ('angry? 41%' when unsure); '' when there is no emotion."""
    if not result:
        return ""
    return f"{emotion_word(result.label, result.uncertain)} {result.probability:.0%}"
