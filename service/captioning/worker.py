"""The recognizer worker: the thread that owns the speech and emotion models and makes captions.

A thin shell: `submit` (any thread) hands utterance events to the SchedulingPolicy under a lock,
the worker thread asks the policy for the next job and runs it with the functions in
`captioning.decode`. What to decode when, what to merge and when a final preempts a partial is
the policy's business (captioning.policy); how a model decodes is the recognizer's.
Every finished utterance ends as exactly one final caption or one `on_skip(id, reason)`:
"discarded" (a blip), "merged" (its audio went into an older waiting utterance's final),
"no_speech", "failed". An utterance that showed a partial always gets a final (empty: the line
goes away).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from subtone.service.asr.recognizer import CancelToken, DecodeCancelled, SpeechRecognizer
from subtone.service.captioning.decode import EmotionClassifier, final_caption, partial_caption
from subtone.service.captioning.partials import PartialPolicy
from subtone.service.captioning.policy import DecodeFinal, DecodePartial, Finish, Job, PostCaptions, SchedulingPolicy
from subtone.service.captioning.stream import UtteranceStream
from subtone.service.events import Caption, UtteranceEvent

log = logging.getLogger(__name__)

ModelLoader = Callable[[], "tuple[SpeechRecognizer, EmotionClassifier | None]"]


@dataclass(frozen=True)
class WorkerStats:
    decoded: int
    merged: int
    discarded: int
    pending: int
    partials: int = 0
    """Partial captions posted."""
    preempted: int = 0
    """Partial decodes cancelled because a final was waiting."""
    no_speech: int = 0
    """Finished utterances that decoded to no text (logged, no caption unless a partial was shown)."""
    failed: int = 0
    """Finished utterances whose decoding raised (logged)."""


class RecognizerWorker:
    """Start with `start()`; feed with `submit(event)`; `stop()` decodes what is waiting, then joins."""

    def __init__(
        self,
        load_models: ModelLoader,
        on_caption: Callable[[Caption], None],
        on_busy: Callable[[bool], None] = lambda busy: None,
        on_error: Callable[[str], None] = lambda message: None,
        max_pending: int = 3,
        partial_policy: PartialPolicy | None = None,
        on_skip: Callable[[int, str], None] = lambda utterance_id, reason: None,
    ) -> None:
        self._load_models = load_models
        self._on_caption = on_caption
        self._on_busy = on_busy
        self._on_error = on_error
        self._on_skip = on_skip
        self._policy = SchedulingPolicy(max_pending, partial_policy, on_skip)
        self.partial_policy = partial_policy
        self._cond = threading.Condition()
        self._cancel: CancelToken | None = None
        """The token of the partial decode in flight; a final cancels it."""
        self._thread: threading.Thread | None = None
        self._decoded = self._partials = self._preempted = self._no_speech = self._failed = 0
        self.models_ready = threading.Event()
        """Set once the models are loaded (or failed to load: see `model_error`)."""
        self.model_error: str | None = None

    # -- any thread --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recognizer", daemon=True)
        self._thread.start()

    def submit(self, event: UtteranceEvent) -> None:
        with self._cond:
            if self._policy.accept(event):
                self._cancel_partial()
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> bool:
        """Decode what is already waiting, then end the thread; True if it ended in time."""
        with self._cond:
            self._policy.stop()
            self._cancel_partial()
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stats(self) -> WorkerStats:
        with self._cond:
            return WorkerStats(
                decoded=self._decoded,
                merged=self._policy.merged,
                discarded=self._policy.discarded,
                pending=self._policy.pending,
                partials=self._partials,
                preempted=self._preempted,
                no_speech=self._no_speech,
                failed=self._failed,
            )

    def partial_due(self) -> bool:
        """Whether an open utterance has enough new audio for a partial that has not started yet."""
        with self._cond:
            return self._policy.partial_due() is not None

    def _cancel_partial(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    # -- the worker thread -------------------------------------------------------------
    def _run(self) -> None:
        recognizer, emotion = self._load()
        while True:
            job = self._next_job(recognizer is not None)
            if isinstance(job, Finish):
                return
            if isinstance(job, PostCaptions):
                for caption in job.captions:
                    self._on_caption(caption)
            elif isinstance(job, DecodeFinal):
                self._final(job.stream, recognizer, emotion)
            elif isinstance(job, DecodePartial) and recognizer is not None:
                self._partial(job, recognizer, emotion)

    def _load(self) -> tuple[SpeechRecognizer | None, EmotionClassifier | None]:
        try:
            return self._load_models()
        except Exception as exc:  # shown in the tray; utterances get no caption until restart
            self.model_error = str(exc) if str(exc) else exc.__class__.__name__
            log.error("speech model unavailable: %s", self.model_error)
            self._on_error(self.model_error)
            return None, None
        finally:
            self.models_ready.set()

    def _next_job(self, can_decode: bool) -> Job:
        with self._cond:
            while (job := self._policy.next_job(can_decode)) is None:
                self._cond.wait()
            if isinstance(job, DecodePartial):
                self._cancel = CancelToken()
            return job

    def _final(
        self, stream: UtteranceStream, recognizer: SpeechRecognizer | None, emotion: EmotionClassifier | None
    ) -> None:
        caption, reason = None, "failed"
        self._on_busy(True)
        try:
            if recognizer is not None:
                caption = final_caption(stream, recognizer, emotion)
                reason = "no_speech"
        except Exception:  # one bad utterance must not stop the captions
            log.exception("decoding utterance %d failed", stream.utterance_id)
        finally:
            self._on_busy(False)
        with self._cond:
            self._decoded += 1
            if caption is None:
                self._failed += reason == "failed"
                self._no_speech += reason == "no_speech"
        if caption is None:
            self._on_skip(stream.utterance_id, reason)
            if stream.partial_posted:
                caption = stream.settled("")  # take the partial off the screen
        if caption is not None:
            self._on_caption(caption)

    def _partial(self, job: DecodePartial, recognizer: SpeechRecognizer, emotion: EmotionClassifier | None) -> None:
        cancel = self._cancel
        assert cancel is not None
        caption, preempted = None, False
        try:
            caption = partial_caption(job.stream, job.audio, recognizer, emotion, cancel)
        except DecodeCancelled:
            preempted = True
            log.debug("partial decode of utterance %d preempted by a final", job.stream.utterance_id)
        except Exception:  # a partial is a preview: its failure costs nothing but the preview
            log.exception("partial decode of utterance %d failed", job.stream.utterance_id)
        with self._cond:
            self._cancel = None
            self._preempted += preempted
            post = caption is not None and self._policy.partial_shown(job.stream)
            self._partials += post
        if post:
            self._on_caption(caption)
