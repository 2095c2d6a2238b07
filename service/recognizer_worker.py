"""The recognizer worker: one thread that owns the speech (and emotion) models and makes captions.

Utterance events come in from the trigger thread through `submit`, which only buffers (never
decodes, never blocks for long). Finished utterances wait in a bounded queue for the worker
thread, which decodes them one at a time, oldest first, and hands each Caption to `on_caption`.

Falling behind: when an utterance finishes while `max_pending` others are already waiting, the
oldest *waiting* one is dropped (and logged) so the captions stay with what is being said now.
The utterance being decoded is never dropped, and nothing is dropped while it is still open.
Utterances that ended as blips ("too_short") are discarded without decoding.

Streaming (partials, a later step): `_next_partial` is the one place to add it. While no final
waits, the worker may decode the open utterance's audio so far every `partial_interval_s` and
post a Caption with is_final=False; finals always go first.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from subtone.service.audio_file import SAMPLE_RATE
from subtone.service.events import Caption, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted
from subtone.service.vad_segmenter import TOO_SHORT

log = logging.getLogger(__name__)

DISCARD_REASONS = frozenset({TOO_SHORT})
MAX_OPEN_SECONDS = 60.0
"""An open utterance keeps at most this much audio (a stuck key must not eat all memory)."""


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray) -> Any:
        """Returns an object with a `.text` (subtone.service.recognizer.Transcript)."""
        ...


class EmotionClassifier(Protocol):
    def classify(self, audio: np.ndarray) -> Any:
        """Returns an object with `.label` and `.scores` (subtone.service.emotion.EmotionResult)."""
        ...


@dataclass
class _Utterance:
    utterance_id: int
    t_start: float
    source: str
    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    t_end: float = 0.0
    reason: str = ""

    def add(self, samples: np.ndarray) -> None:
        if self.samples >= MAX_OPEN_SECONDS * SAMPLE_RATE:
            return
        self.chunks.append(samples)
        self.samples += len(samples)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks).astype(np.float32, copy=False) if self.chunks else np.zeros(0, np.float32)


@dataclass(frozen=True)
class WorkerStats:
    decoded: int
    dropped: int
    discarded: int
    pending: int


class RecognizerWorker:
    """Start with `start()`; feed with `submit(event)`; `stop()` decodes what is waiting, then joins."""

    def __init__(
        self,
        load_models: Callable[[], tuple[Transcriber, EmotionClassifier | None]],
        on_caption: Callable[[Caption], None],
        on_busy: Callable[[bool], None] = lambda busy: None,
        on_error: Callable[[str], None] = lambda message: None,
        max_pending: int = 3,
        partial_interval_s: float | None = None,
    ) -> None:
        self._load_models = load_models
        self._on_caption = on_caption
        self._on_busy = on_busy
        self._on_error = on_error
        self._max_pending = max_pending
        self.partial_interval_s = partial_interval_s
        self._cond = threading.Condition()
        self._open: dict[int, _Utterance] = {}
        self._ready: collections.deque[_Utterance] = collections.deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._decoded = self._dropped = self._discarded = 0
        self.models_ready = threading.Event()
        """Set once the models are loaded (or failed to load: see `model_error`)."""
        self.model_error: str | None = None

    # -- any thread --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recognizer", daemon=True)
        self._thread.start()

    def submit(self, event: UtteranceEvent) -> None:
        with self._cond:
            if isinstance(event, UtteranceStarted):
                self._open[event.utterance_id] = _Utterance(event.utterance_id, event.t_start, event.source)
            elif isinstance(event, UtteranceAudio):
                utterance = self._open.get(event.utterance_id)
                if utterance is not None:
                    utterance.add(event.samples)
            elif isinstance(event, UtteranceEnded):
                utterance = self._open.pop(event.utterance_id, None)
                if utterance is None:
                    return
                if event.reason in DISCARD_REASONS:
                    self._discarded += 1
                    return
                utterance.t_end, utterance.reason = event.t_end, event.reason
                if len(self._ready) >= self._max_pending:
                    old = self._ready.popleft()
                    self._dropped += 1
                    log.warning(
                        "recognizer is behind: dropped utterance %d (%.1f s of audio) to keep up",
                        old.utterance_id,
                        old.samples / SAMPLE_RATE,
                    )
                self._ready.append(utterance)
                self._cond.notify()

    def stop(self, timeout: float = 30.0) -> bool:
        """Decode what is already waiting, then end the thread; True if it ended in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stats(self) -> WorkerStats:
        with self._cond:
            return WorkerStats(self._decoded, self._dropped, self._discarded, len(self._ready))

    # -- the worker thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            transcriber, emotion = self._load_models()
        except Exception as exc:  # shown in the tray; utterances are dropped until restart
            self.model_error = str(exc) if str(exc) else exc.__class__.__name__
            log.error("speech model unavailable: %s", self.model_error)
            self._on_error(self.model_error)
            transcriber, emotion = None, None
        finally:
            self.models_ready.set()
        while True:
            with self._cond:
                while not self._ready and not self._stopping:
                    self._cond.wait(timeout=self.partial_interval_s)
                    if self.partial_interval_s and not self._ready:
                        break
                if not self._ready and self._stopping:
                    return
                utterance = self._ready.popleft() if self._ready else None
            if utterance is None:
                self._next_partial(transcriber, emotion)
                continue
            if transcriber is None:
                continue
            self._on_busy(True)
            try:
                caption = self._decode(utterance, transcriber, emotion)
            except Exception:  # one bad utterance must not stop the captions
                log.exception("decoding utterance %d failed", utterance.utterance_id)
                caption = None
            finally:
                self._on_busy(False)
            with self._cond:
                self._decoded += 1
            if caption is not None:
                self._on_caption(caption)

    def _decode(self, utterance: _Utterance, transcriber: Transcriber, emotion: EmotionClassifier | None) -> Caption | None:
        audio = utterance.audio()
        if audio.size < SAMPLE_RATE // 10:
            return None
        t0 = time.perf_counter()
        text = transcriber.transcribe(audio).text.strip()
        t1 = time.perf_counter()
        if not text:
            log.info("utterance %d: no speech (%.2f s decode)", utterance.utterance_id, t1 - t0)
            return None
        label, scores = None, {}
        if emotion is not None:
            try:
                result = emotion.classify(audio)
                label, scores = result.label, dict(result.scores)
            except Exception:
                log.exception("emotion for utterance %d failed; caption without emotion", utterance.utterance_id)
        log.info(
            "utterance %d: %.1f s audio, asr %.3f s, emotion %.3f s",
            utterance.utterance_id,
            audio.size / SAMPLE_RATE,
            t1 - t0,
            time.perf_counter() - t1,
        )
        return Caption(
            utterance_id=utterance.utterance_id,
            text=text,
            is_final=True,
            t_start=utterance.t_start,
            t_end=utterance.t_end,
            emotion=label,
            scores=scores,
        )

    def _next_partial(self, transcriber: Transcriber | None, emotion: EmotionClassifier | None) -> None:
        """Hook for streaming partials (not yet built): decode an open utterance's audio so far."""
        return None
