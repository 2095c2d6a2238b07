"""The recognizer worker with the real Whisper model: captions, blips, and falling behind.

Integration layer: the same policies with a scripted recognizer, in milliseconds, are in
test_worker_scheduling.py and test_scheduling_policy.py."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from conftest import ASR_DEV, JFK, TEST_MODEL
from subtone.config import load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.app.controller import load_models
from subtone.service.events import UtteranceAudio, UtteranceEnded, UtteranceStarted
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.events import TOO_SHORT
from subtone.export.evaluation.wer import word_errors

SHORT = ASR_DEV / "en" / "ljspeech" / "LJ001-0002.flac"  # "in being comparatively modern."


@pytest.fixture(scope="module")
def models(whisper_model_dir):
    settings = load_settings(overrides={"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL})
    m = load_models(settings)
    return m.transcriber, m.emotion


def make_worker(models, captions, max_pending=3):
    done = threading.Event()

    def on_caption(c):
        captions.append(c)
        done.set()

    worker = RecognizerWorker(lambda: models, on_caption, max_pending=max_pending)
    worker.start()
    assert worker.models_ready.wait(60) and worker.model_error is None
    return worker


def send(worker, uid, audio, reason="released", chunk=4800):
    worker.submit(UtteranceStarted(uid, 100.0 + uid, "hotkey"))
    for i in range(0, len(audio), chunk):
        worker.submit(UtteranceAudio(uid, audio[i : i + chunk]))
    worker.submit(UtteranceEnded(uid, 100.0 + uid + len(audio) / SAMPLE_RATE, reason))


def test_an_utterance_becomes_a_final_caption(models):
    captions = []
    worker = make_worker(models, captions)
    send(worker, 7, load_audio(JFK))
    assert worker.stop()
    (c,) = captions
    assert c.utterance_id == 7 and c.is_final and c.t_start == 107.0 and c.t_end == pytest.approx(118.0)
    assert word_errors("And so my fellow Americans ask not what your country can do for you ask what you can do for your country", c.text).wer < 0.25


def test_blips_and_silence_give_no_caption(models):
    captions = []
    worker = make_worker(models, captions)
    send(worker, 1, load_audio(SHORT), reason=TOO_SHORT)
    send(worker, 2, np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
    assert worker.stop()
    assert captions == []
    assert worker.stats().discarded == 1 and worker.stats().decoded == 1


def _short_clips(count: int) -> list[dict]:
    rows = [json.loads(line) for line in (ASR_DEV / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return sorted((r for r in rows if r["duration_s"] < 6.0), key=lambda r: r["audio"])[:count]


def test_when_behind_waiting_utterances_are_merged_and_every_one_is_still_captioned(models):
    captions = []
    worker = make_worker(models, captions, max_pending=2)
    clips = _short_clips(6)
    for uid, clip in enumerate(clips, 1):  # six utterances end at once; each takes the worker ~0.1-0.5 s
        send(worker, uid, load_audio(ASR_DEV / clip["audio"]))
    assert worker.stop()
    ids = [c.utterance_id for c in captions]
    assert ids == sorted(ids) and worker.stats().merged == 6 - len(ids) >= 1
    said = " ".join(c.text for c in captions)
    assert word_errors(" ".join(clip["text"] for clip in clips), said).wer < 0.2, said  # no utterance lost


def test_stop_decodes_what_is_waiting(models):
    captions = []
    worker = make_worker(models, captions)
    send(worker, 1, load_audio(SHORT))
    send(worker, 2, load_audio(SHORT))
    assert worker.stop()
    assert [c.utterance_id for c in captions] == [1, 2]


def test_a_missing_model_is_reported_not_raised():
    errors = []
    worker = RecognizerWorker(lambda: (_ for _ in ()).throw(FileNotFoundError("model 'x' is missing")), lambda c: None,
                              on_error=errors.append)
    worker.start()
    assert worker.models_ready.wait(10)
    send(worker, 1, np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert worker.stop()
    assert errors == ["model 'x' is missing"] and worker.model_error == "model 'x' is missing"
