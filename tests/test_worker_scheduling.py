"""The recognizer worker's thread shell driven by the scripted fake recognizer (no model): preemption,
lag, stop, load failure. The same behaviours with real Whisper are in test_streaming.py and
test_recognizer_worker.py."""

from __future__ import annotations

import threading

import numpy as np

from fakes import ScriptedRecognizer, speech
from subtone.service.captioning.partials import PartialPolicy
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.events import Caption, UtteranceAudio, UtteranceEnded, UtteranceStarted

WAIT_S = 10.0
"""Generous: these waits end in milliseconds unless something is broken."""


class Captions:
    def __init__(self) -> None:
        self.items: list[Caption] = []
        self.finals: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, caption: Caption) -> None:
        with self._lock:
            self.items.append(caption)
            if caption.is_final:
                self.finals.setdefault(caption.utterance_id, threading.Event()).set()

    def wait_final(self, uid: int) -> bool:
        with self._lock:
            event = self.finals.setdefault(uid, threading.Event())
        return event.wait(WAIT_S)


def worker_with(recognizer, captions, **kwargs) -> RecognizerWorker:
    worker = RecognizerWorker(lambda: (recognizer, None), captions, **kwargs)
    worker.start()
    assert worker.models_ready.wait(WAIT_S)
    return worker


def send(worker, uid: int, audio: np.ndarray, end: bool = True) -> None:
    worker.submit(UtteranceStarted(uid, float(uid), "voice"))
    worker.submit(UtteranceAudio(uid, audio))
    if end:
        worker.submit(UtteranceEnded(uid, uid + 1.0, "silence"))


def test_a_final_cancels_the_partial_decode_in_flight():
    recognizer = ScriptedRecognizer(partial_delay_s=WAIT_S)  # a partial that would take "forever"
    captions = Captions()
    worker = worker_with(recognizer, captions, partial_policy=PartialPolicy(interval_s=0.5, min_audio_s=1.0))
    send(worker, 1, speech(1, 2.0), end=False)
    assert recognizer.started.wait(WAIT_S)
    worker.submit(UtteranceEnded(1, 3.0, "silence"))
    assert captions.wait_final(1)
    assert worker.stop()
    assert [c.partial for c in recognizer.calls] == [True, False] and recognizer.calls[0].cancelled
    assert [(c.text, c.is_final) for c in captions.items] == [("w1", True)]  # the cancelled partial never showed
    assert worker.stats().preempted == 1


def test_a_recognizer_that_cannot_cancel_finishes_the_partial_which_is_then_not_shown():
    recognizer = ScriptedRecognizer(partial_delay_s=0.2, cancellable=False)
    captions = Captions()
    worker = worker_with(recognizer, captions, partial_policy=PartialPolicy(interval_s=0.5, min_audio_s=1.0))
    send(worker, 1, speech(1, 2.0), end=False)
    assert recognizer.started.wait(WAIT_S)
    worker.submit(UtteranceEnded(1, 3.0, "silence"))
    assert captions.wait_final(1) and worker.stop()
    assert [c.is_final for c in captions.items] == [True]


def test_partials_are_skipped_while_the_recognizer_lags_and_the_final_comes_once():
    recognizer = ScriptedRecognizer(partial_delay_s=0.05)
    captions = Captions()
    worker = worker_with(recognizer, captions, partial_policy=PartialPolicy(interval_s=0.1, min_audio_s=0.1))
    worker.submit(UtteranceStarted(1, 0.0, "voice"))
    for _ in range(100):  # 10 s of audio handed over at once, in 0.1 s pieces: 100 partials would be due
        worker.submit(UtteranceAudio(1, speech(1, 0.1)))
    worker.submit(UtteranceEnded(1, 10.0, "silence"))
    assert captions.wait_final(1) and worker.stop()
    assert len(recognizer.partials) < 10  # skipped, not queued
    finals = [c for c in captions.items if c.is_final]
    assert [c.text for c in finals] == ["w1"] and captions.items[-1].is_final


def test_no_final_is_dropped_when_utterances_end_faster_than_they_decode():
    recognizer = ScriptedRecognizer(final_delay_s=0.02)
    captions = Captions()
    skipped: list[tuple[int, str]] = []
    worker = worker_with(recognizer, captions, max_pending=2, on_skip=lambda uid, why: skipped.append((uid, why)))
    for uid in range(1, 13):
        send(worker, uid, speech(uid, 0.5))
    assert worker.stop()
    heard = [w for c in captions.items for w in c.text.split()]
    assert heard == [f"w{uid}" for uid in range(1, 13)]  # every word once, in order
    captioned = {c.utterance_id for c in captions.items}
    assert captioned | {uid for uid, _ in skipped} == set(range(1, 13))
    assert all(why == "merged" for _, why in skipped) and worker.stats().merged == len(skipped)


def test_stop_decodes_what_waits_and_an_empty_utterance_is_no_speech():
    recognizer = ScriptedRecognizer(final_delay_s=0.01)
    captions = Captions()
    skipped: list[tuple[int, str]] = []
    worker = worker_with(recognizer, captions, on_skip=lambda uid, why: skipped.append((uid, why)))
    send(worker, 1, speech(1, 1.0))
    send(worker, 2, np.zeros(16000, np.float32))
    send(worker, 3, speech(3, 1.0))
    assert worker.stop()
    assert [(c.utterance_id, c.text) for c in captions.items] == [(1, "w1"), (3, "w3")]
    assert skipped == [(2, "no_speech")] and worker.stats().no_speech == 1


def test_a_model_that_fails_to_load_is_reported_and_nothing_hangs():
    errors: list[str] = []

    def broken():
        raise FileNotFoundError("model 'x' is missing")

    worker = RecognizerWorker(broken, lambda c: None, on_error=errors.append)
    worker.start()
    assert worker.models_ready.wait(WAIT_S)
    send(worker, 1, speech(1, 1.0))
    assert worker.stop()
    assert errors == ["model 'x' is missing"] and worker.model_error == "model 'x' is missing"
