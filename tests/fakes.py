"""Fakes for testing pure logic in milliseconds: a scripted speech recognizer and voice detector.

No model runs. 
Test audio is built with `speech(word_id, seconds)`: every sample of a word holds the value
word_id / 1000, so the fake "hears" which words an utterance holds (in order, also after two
utterances were merged) without any model. Decodes take `final_delay_s` / `partial_delay_s`,
sleep in small steps and honour a CancelToken, like a cancellable ONNX recognizer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from subtone.service.asr.recognizer import CancelToken, DecodeCancelled, RecognizerCapabilities, Transcript
from subtone.service.audio import SAMPLE_RATE
from subtone.service.models.onnx_session import SessionInfo


def speech(word_id: int, seconds: float) -> np.ndarray:
    return np.full(round(seconds * SAMPLE_RATE), word_id / 1000, dtype=np.float32)


def words_in(audio: np.ndarray) -> list[str]:
    """The word ids held by `audio`, in order; silence (0) separates nothing and is skipped."""
    ids = np.rint(audio * 1000).astype(int)
    if ids.size == 0:
        return []
    starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
    return [f"w{ids[s]}" for s in starts if ids[s] > 0]


@dataclass
class Call:
    partial: bool
    samples: int
    cancelled: bool = False


class ScriptedRecognizer:
    name = "scripted"
    session_info = SessionInfo("CPUExecutionProvider")

    def __init__(self, final_delay_s: float = 0.0, partial_delay_s: float = 0.0, cancellable: bool = True) -> None:
        self.final_delay_s = final_delay_s
        self.partial_delay_s = partial_delay_s
        self.capabilities = RecognizerCapabilities(cancellable=cancellable)
        self.calls: list[Call] = []
        self.started = threading.Event()
        """Set when a decode begins (tests wait on it to act mid-decode)."""
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, cancel: CancelToken | None = None) -> Transcript:
        call = Call(partial, int(audio.size))
        with self._lock:
            self.calls.append(call)
        self.started.set()
        deadline = time.monotonic() + (self.partial_delay_s if partial else self.final_delay_s)
        while time.monotonic() < deadline:
            if cancel is not None and cancel.cancelled and self.capabilities.cancellable:
                break
            time.sleep(0.001)
        if cancel is not None and cancel.cancelled:
            call.cancelled = True
            raise DecodeCancelled(self.name)
        return Transcript(text=" ".join(words_in(audio)), tokens=())

    @property
    def finals(self) -> list[Call]:
        return [c for c in self.calls if not c.partial]

    @property
    def partials(self) -> list[Call]:
        return [c for c in self.calls if c.partial]


BLOCK_S = 0.03


class LoudIsVoice:
    """Scripted voice detector: a frame is voice when its peak is above 0.01."""

    def voice_confidence(self, frame: np.ndarray) -> float:
        return 1.0 if np.abs(frame).max() > 0.01 else 0.0


def talk(seconds: float) -> np.ndarray:
    """Syllable-like: a 200 Hz tone whose level rises and falls every 30 ms (the start rule wants modulation)."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    level = np.where((t // BLOCK_S) % 2 == 0, 0.3, 0.05)
    return (level * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def quiet(seconds: float) -> np.ndarray:
    return (np.random.default_rng(1).standard_normal(round(seconds * SAMPLE_RATE)) * 1e-4).astype(np.float32)
