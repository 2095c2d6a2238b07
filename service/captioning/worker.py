"""The recognizer worker: one thread that owns the speech (and emotion) models and makes captions.

Utterance events come in from the trigger thread through `submit`, which only buffers (never
decodes, never blocks for long). Finished utterances wait in a bounded queue for the worker
thread, which decodes them one at a time, oldest first, and hands each Caption to `on_caption`.

Falling behind: when an utterance finishes while `max_pending` others are already waiting, the
oldest *waiting* one is dropped (and logged) so the captions stay with what is being said now.
The utterance being decoded is never dropped, and nothing is dropped while it is still open.
Utterances that ended as blips ("too_short") are discarded without decoding.

Streaming (`partial_policy`, see subtone.service.captioning.partials): while no final waits, the worker
re-decodes the open utterance's audio so far after every `interval_s` of new audio and posts a
Caption with is_final=False (stable words in `stable_text`). Finals always go first: a final
that arrives while a partial decode runs aborts it (ONNX Runtime's RunOptions.terminate, where
the recognizer takes one; else it waits for that one decode), and partials are never queued (a
partial that is due while the worker is busy is simply made later, from more audio). An
utterance whose partial was shown but which then gets no decoded final still gets exactly one
final: empty (removes the line) when it was a blip or had no speech, or the last partial's
text when it was dropped to keep up.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.events import Caption, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted
from subtone.service.captioning.partials import (
    PartialPolicy,
    PartialTrack,
    TranscriberCaps,
    decode_partial,
    final_token_cap,
    new_run_options,
    strip_repeats,
)
from subtone.service.trigger.vad_segmenter import TOO_SHORT

log = logging.getLogger(__name__)

DISCARD_REASONS = frozenset({TOO_SHORT})
MAX_OPEN_SECONDS = 60.0
"""An open utterance keeps at most this much audio (a stuck key must not eat all memory)."""


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray) -> Any:
        """Returns an object with a `.text` (subtone.service.asr.recognizer.Transcript)."""
        ...


class EmotionClassifier(Protocol):
    def classify(self, audio: np.ndarray) -> Any:
        """Returns an object with `.label` and `.scores` (subtone.service.emotion.recognizer.EmotionResult)."""
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
    partial: PartialTrack | None = None
    """Set when the first partial decode starts."""
    partial_posted: bool = False
    """A partial caption of this utterance went out (so it must end with a final)."""

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
    partials: int = 0
    """Partial captions posted."""
    preempted: int = 0
    """Partial decodes aborted because a final was waiting."""
    no_speech: int = 0
    """Finished utterances that decoded to no text (logged, no caption unless a partial was shown)."""
    failed: int = 0
    """Finished utterances whose decoding raised (logged)."""


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
        partial_policy: PartialPolicy | None = None,
        on_skip: Callable[[int, str], None] = lambda utterance_id, reason: None,
    ) -> None:
        self._load_models = load_models
        self._on_caption = on_caption
        self._on_busy = on_busy
        self._on_error = on_error
        self._on_skip = on_skip
        """Told (utterance id, reason) for each finished utterance that gets no decoded final:
        "discarded", "dropped", "no_speech", "failed" (soak runs account for every utterance)."""
        self._max_pending = max_pending
        if partial_policy is None and partial_interval_s:
            partial_policy = PartialPolicy(interval_s=partial_interval_s)
        self.partial_policy = partial_policy
        self.partial_interval_s = partial_policy.interval_s if partial_policy else None
        self._settle: collections.deque[Caption] = collections.deque()
        """Finals that need no decoding (see the module docstring), posted before anything else."""
        self._partials = self._no_speech = self._failed = self._preempted = 0
        self._partial_run: Any = None
        """RunOptions of the partial decode in flight; a final sets its `terminate`."""
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
                    if self.partial_policy is not None:
                        self._cond.notify()
            elif isinstance(event, UtteranceEnded):
                utterance = self._open.pop(event.utterance_id, None)
                if utterance is None:
                    return
                if event.reason in DISCARD_REASONS:
                    self._discarded += 1
                    self._on_skip(event.utterance_id, "discarded")
                    if utterance.partial_posted:
                        self._settle.append(self._settled(utterance, "", event.t_end))
                        self._cond.notify()
                    return
                utterance.t_end, utterance.reason = event.t_end, event.reason
                if len(self._ready) >= self._max_pending:
                    old = self._ready.popleft()
                    self._dropped += 1
                    self._on_skip(old.utterance_id, "dropped")
                    log.warning(
                        "recognizer is behind: dropped utterance %d (%.1f s of audio) to keep up",
                        old.utterance_id,
                        old.samples / SAMPLE_RATE,
                    )
                    if old.partial_posted and old.partial is not None and old.partial.shown is not None:
                        self._settle.append(self._settled(old, old.partial.shown.text, old.t_end))
                self._preempt_partial()
                self._ready.append(utterance)
                self._cond.notify()

    def stop(self, timeout: float = 30.0) -> bool:
        """Decode what is already waiting, then end the thread; True if it ended in time."""
        with self._cond:
            self._stopping = True
            self._preempt_partial()
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stats(self) -> WorkerStats:
        with self._cond:
            return WorkerStats(
                self._decoded,
                self._dropped,
                self._discarded,
                len(self._ready),
                self._partials,
                self._preempted,
                self._no_speech,
                self._failed,
            )

    def partial_due(self) -> bool:
        """Whether an open utterance has enough new audio for a partial that has not started yet."""
        with self._cond:
            return self._partial_due() is not None

    @staticmethod
    def _settled(utterance: _Utterance, text: str, t_end: float) -> Caption:
        emotion = utterance.partial.emotion if utterance.partial is not None and text else None
        return Caption(utterance.utterance_id, text, True, utterance.t_start, t_end, emotion, stable_text=text)

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
        caps = TranscriberCaps.of(transcriber) if transcriber is not None else TranscriberCaps()
        while True:
            partial: _Utterance | None = None
            with self._cond:
                while not self._settle and not self._ready and not self._stopping:
                    partial = self._partial_due() if transcriber is not None else None
                    if partial is not None:
                        break
                    self._cond.wait()
                settled = list(self._settle)
                self._settle.clear()
                if not settled and not self._ready and self._stopping:
                    return
                utterance = self._ready.popleft() if self._ready else None
                if utterance is None and partial is not None:
                    audio = partial.audio()
                    if partial.partial is None:
                        partial.partial = PartialTrack(self.partial_policy)
                    partial.partial.decoded_samples = audio.size
                    run_options = self._partial_run = new_run_options(caps)
                else:
                    partial = None
            for caption in settled:
                self._on_caption(caption)
            if partial is not None:
                self._next_partial(partial, audio, transcriber, emotion, caps, run_options)
                continue
            if utterance is None or transcriber is None:
                continue
            self._on_busy(True)
            try:
                caption = self._decode(utterance, transcriber, emotion, caps)
            except Exception:  # one bad utterance must not stop the captions
                log.exception("decoding utterance %d failed", utterance.utterance_id)
                caption = None
                with self._cond:
                    self._failed += 1
                self._on_skip(utterance.utterance_id, "failed")
            finally:
                self._on_busy(False)
            with self._cond:
                self._decoded += 1
            if caption is None and utterance.partial_posted:
                caption = self._settled(utterance, "", utterance.t_end)  # take the partial off the screen
            if caption is not None:
                self._on_caption(caption)

    def _decode(
        self, utterance: _Utterance, transcriber: Transcriber, emotion: EmotionClassifier | None, caps: TranscriberCaps
    ) -> Caption | None:
        audio = utterance.audio()
        if audio.size < SAMPLE_RATE // 10:
            with self._cond:
                self._no_speech += 1
            self._on_skip(utterance.utterance_id, "no_speech")
            return None
        t0 = time.perf_counter()
        if caps.max_tokens:
            cap = final_token_cap(audio.size)
            result = transcriber.transcribe(audio, max_tokens=cap)
            text = result.text.strip()
            if len(result.tokens) >= cap - 1:  # ran into the cap: most likely a decoder loop
                text = strip_repeats(text, min_repeats=2)
                log.warning("utterance %d: decoder hit its %d-token cap; loop cut", utterance.utterance_id, cap)
        else:
            text = transcriber.transcribe(audio).text.strip()
        t1 = time.perf_counter()
        if not text:
            log.info("utterance %d: no speech (%.2f s decode)", utterance.utterance_id, t1 - t0)
            with self._cond:
                self._no_speech += 1
            self._on_skip(utterance.utterance_id, "no_speech")
            return None
        label, scores = None, {}
        if emotion is not None:
            try:
                result = emotion.classify(audio)  # None: too short or quiet to tell
                if result is not None:
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
            stable_text=text,
        )

    def _preempt_partial(self) -> None:
        """A final is waiting (or we stop): abort the partial decode in flight (call under the lock)."""
        if self._partial_run is not None:
            self._partial_run.terminate = True

    def _partial_due(self) -> _Utterance | None:
        """The newest open utterance that has enough new audio for a partial (call under the lock)."""
        policy = self.partial_policy
        if policy is None:
            return None
        for utterance in sorted(self._open.values(), key=lambda u: -u.utterance_id):
            decoded = utterance.partial.decoded_samples if utterance.partial is not None else 0
            if policy.is_due(utterance.samples, decoded):
                return utterance
        return None

    def _next_partial(
        self,
        utterance: _Utterance,
        audio: np.ndarray,
        transcriber: Transcriber,
        emotion: EmotionClassifier | None,
        caps: TranscriberCaps,
        run_options: Any,
    ) -> None:
        """Decode an open utterance's audio so far and post it as a partial caption."""
        policy, track = self.partial_policy, utterance.partial
        assert policy is not None and track is not None
        try:
            hypothesis = decode_partial(transcriber, audio, policy, caps, run_options)
            label, scores = track.emotion, {}
            if emotion is not None and hypothesis:
                result = emotion.classify(audio)  # None: too short or quiet to tell
                if result is not None:
                    scores = dict(result.scores)
                    label = track.update_emotion(scores)
        except Exception:  # a partial is a preview: its failure costs nothing but the preview
            with self._cond:
                self._partial_run = None
                preempted = run_options is not None and run_options.terminate
                self._preempted += preempted
            if preempted:
                log.debug("partial decode of utterance %d preempted by a final", utterance.utterance_id)
            else:
                log.exception("partial decode of utterance %d failed", utterance.utterance_id)
            return
        shown = track.update_text(hypothesis)
        with self._cond:
            self._partial_run = None
            post = utterance.utterance_id in self._open and bool(shown.text)
            if post:  # else it ended meanwhile: its final comes next
                self._partials += 1
                utterance.partial_posted = True
        if not post:
            return
        self._on_caption(
            Caption(
                utterance_id=utterance.utterance_id,
                text=shown.text,
                is_final=False,
                t_start=utterance.t_start,
                t_end=utterance.t_start + audio.size / SAMPLE_RATE,
                emotion=label,
                scores=scores,
                stable_text=shown.committed,
            )
        )
