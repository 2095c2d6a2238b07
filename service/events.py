"""The typed events that flow one way: microphone → trigger → recognizer → caption → overlay."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fear", "disgust")


@dataclass(frozen=True)
class AudioBlock:
    """One block from the microphone, already 16 kHz mono float32."""

    samples: np.ndarray
    t_start: float
    """Monotonic time (s) of the block's first sample."""


MICROPHONE = "microphone"
SYSTEM = "system"
"""Audio sources: the user's microphone, and what the computer itself plays."""


@dataclass(frozen=True)
class UtteranceStarted:
    utterance_id: int
    t_start: float
    source: str
    """What opened it: "hotkey" or "voice"."""
    audio_source: str = MICROPHONE
    """Where the audio comes from: MICROPHONE or SYSTEM."""


@dataclass(frozen=True)
class UtteranceAudio:
    utterance_id: int
    samples: np.ndarray


@dataclass(frozen=True)
class UtteranceEnded:
    utterance_id: int
    t_end: float
    reason: str
    """"released", "silence", "max_length", "stopped", or TOO_SHORT."""


MAX_LENGTH = "max_length"
"""UtteranceEnded.reason of a long utterance split in two: its audio past t_end starts the next one."""
TOO_SHORT = "too_short"
"""UtteranceEnded.reason of a blip (too little speech to be an utterance): no caption."""


UtteranceEvent = UtteranceStarted | UtteranceAudio | UtteranceEnded

UNCERTAIN_MARK = "?"
"""Ends the emotion's word wherever an uncertain emotion is shown or exported ("angry?"): a guess."""


def emotion_word(emotion: str | None, uncertain: bool = False) -> str:
    """The emotion as a word: "angry", "angry?" when the model was unsure, "" for no emotion."""
    if not emotion:
        return ""
    return emotion + UNCERTAIN_MARK if uncertain else emotion


def emotion_tag(emotion: str | None, uncertain: bool = False, strong: bool = False) -> str:
    """The emotion for plain text (exports, the recent-captions list), where there is no color or
    font weight: "angry", "angry?", "angry, strong", "angry?, strong"; "" for no emotion."""
    word = emotion_word(emotion, uncertain)
    return f"{word}, strong" if word and strong else word


@dataclass(frozen=True)
class Caption:
    """What the overlay shows: one utterance's text, partial or final, with its emotion."""

    utterance_id: int
    text: str
    is_final: bool
    t_start: float
    t_end: float
    emotion: str | None = None
    """One of EMOTIONS, or None when no emotion model runs."""
    scores: Mapping[str, float] = field(default_factory=dict)
    emotion_uncertain: bool = False
    """The model's calibrated probability for `emotion` is under [emotion] min_confidence: the
    overlay shows the label without its color (a wrong color is worse than none)."""
    strong: bool = False
    """The emotion is strongly expressed (the model's intensity score): drawn in a heavier weight."""
    language: str = ""
    """The language heard ("en", "ko", …); "" when the model does not say."""
    audio_source: str = MICROPHONE
    speaker: str = ""
    """Who spoke, for the label ("you", "computer": [audio] names); "" when only the microphone listens."""
    stable_text: str = ""
    """Partials: the leading words of `text` that stay put (two decodes agreed); the rest of `text`
    is a tentative tail that may still change. Finals: equal to `text`. "" when nothing is stable."""


class ServiceState(enum.Enum):
    """What the tray icon shows."""

    IDLE = "idle"
    LISTENING = "listening"
    HEARING = "hearing speech"
    RECOGNISING = "recognising"
    ERROR = "error"


@dataclass(frozen=True)
class StateChanged:
    state: ServiceState
    detail: str = ""
    """For ERROR: the one-line message shown in the tray."""
