"""The speech-recognizer interface every ASR family implements, and the factory choosing one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from subtone.config import Settings
from subtone.service.models.registry import ModelEntry
from subtone.service.models.onnx_session import SessionInfo

# family → "module:factory"; imported lazily so a family's code loads only when used.
FAMILIES: dict[str, str] = {
    "whisper": "subtone.service.asr.whisper.recognizer:WhisperRecognizer",
    "nemo-ctc": "subtone.service.asr.nemo.recognizer:NemoRecognizer",
    "nemo-rnnt": "subtone.service.asr.nemo.recognizer:NemoRecognizer",
    "nemo-tdt": "subtone.service.asr.nemo.recognizer:NemoRecognizer",
}


@dataclass(frozen=True)
class Transcript:
    """One decoded utterance."""

    text: str
    tokens: tuple[int, ...]
    """Token IDs without special tokens."""
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    """Whisper's P(<|nospeech|>); 0 for families without it."""


class SpeechRecognizer(Protocol):
    name: str
    session_info: SessionInfo

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """16 kHz mono float32 in, text out; empty text for silence."""
        ...


def create_recognizer(entry: ModelEntry, settings: Settings) -> SpeechRecognizer:
    try:
        target = FAMILIES[entry.family]
    except KeyError:
        from subtone.service.errors import SubtoneError

        raise SubtoneError(
            f"model '{entry.name}' has family '{entry.family}', which this version cannot run "
            f"(known: {', '.join(sorted(FAMILIES))})"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_entry(entry, settings)
