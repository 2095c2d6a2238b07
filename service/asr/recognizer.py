"""The one speech-recognizer interface every ASR family implements, and the factory choosing one.

The captioning worker knows recognizers only through `SpeechRecognizer`: it asks for a final or a
partial transcript and may cancel a decode from another thread. How a family caps tokens, guards
against decoder loops or aborts a running graph stays inside that family's recognizer.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import numpy as np

from subtone.config import Settings
from subtone.service.errors import SubtoneError
from subtone.service.models.onnx_session import SessionInfo
from subtone.service.models.registry import ModelEntry

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
    language: str = ""
    """The language heard (a code such as "en" or "ko"); "" when the model does not say."""
    language_prob: float = 0.0
    """How sure the model is of `language` (1.0 when it is fixed by the settings or the model)."""
    encoder_states: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Hidden states the encoder computed for this audio, [frames, width] per output name, one
    frame per 20 ms from the audio's start; only those a caller asked for with
    `keep_encoder_states` (an emotion head reads them instead of running its own encoder)."""


@dataclass(frozen=True)
class RecognizerCapabilities:
    """What a recognizer declares about itself, so callers never inspect signatures."""

    cancellable: bool = False
    """A decode stops early (raising DecodeCancelled) once its CancelToken is cancelled; otherwise
    a cancelled decode runs to its end and only then raises."""


class DecodeCancelled(Exception):
    """The decode was cancelled from another thread (a final caption preempted a partial)."""


class CancelToken:
    """Set from any thread to abort one decode; ONNX-based recognizers map it to RunOptions.terminate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._run_options: Any = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._run_options is not None:
                self._run_options.terminate = True

    def run_options(self) -> Any:
        """The onnxruntime.RunOptions tied to this token (made on first use)."""
        with self._lock:
            if self._run_options is None:
                import onnxruntime

                self._run_options = onnxruntime.RunOptions()
                self._run_options.terminate = self._cancelled
            return self._run_options


class SpeechRecognizer(Protocol):
    name: str
    session_info: SessionInfo
    capabilities: RecognizerCapabilities

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, cancel: CancelToken | None = None) -> Transcript:
        """16 kHz mono float32 in, text out; empty text for silence.

        `partial`: the audio is an utterance still being spoken (it may end mid-word), so the
        recognizer may decode more cheaply and must not run away. `cancel`: raises DecodeCancelled
        once cancelled (early when `capabilities.cancellable`).
        """
        ...


def create_recognizer(entry: ModelEntry, settings: Settings) -> SpeechRecognizer:
    try:
        target = FAMILIES[entry.family]
    except KeyError:
        raise SubtoneError(
            f"model '{entry.name}' has family '{entry.family}', which this version cannot run "
            f"(known: {', '.join(sorted(FAMILIES))})"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_entry(entry, settings)
