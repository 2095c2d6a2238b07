"""Speech longer than [vad] max_utterance_s, with no pause long enough to end it, through the voice
trigger and the real Whisper model: split at a quiet point, no word lost or doubled at a seam."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ASR_DEV, TEST_MODEL
from subtone.config import load_settings
from subtone.export.evaluation.pipeline_replay import CaptionLog, blocks_of, feed_segmented
from subtone.export.evaluation.text_normalize import normalize_english
from subtone.export.evaluation.wer import DELETION, INSERTION, align, count_errors
from subtone.service.app.controller import load_models
from subtone.service.audio.file import load_audio
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.trigger.vad_segmenter import VadSegmenter

pytestmark = pytest.mark.slow
CLIPS = ("LJ001-0003", "LJ001-0005", "LJ001-0007", "LJ001-0010")  # 35 s back to back: splits at 15 s


def _rows() -> list[dict]:
    rows = [json.loads(line) for line in (ASR_DEV / "manifest.jsonl").read_text().splitlines() if line.strip()]
    by_name = {r["audio"].rsplit("/", 1)[-1].removesuffix(".flac"): r for r in rows}
    return [by_name[name] for name in CLIPS]


def _words(text: str) -> list[str]:
    return normalize_english(text).split()


def test_long_speech_loses_and_doubles_no_word_at_its_seams(whisper_model_dir):
    settings = load_settings(overrides={"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL, "emotion.enabled": False})
    models = load_models(settings)
    rows = _rows()
    audios = [load_audio(ASR_DEV / r["audio"]) for r in rows]
    log = CaptionLog()
    worker = RecognizerWorker(lambda: (models.transcriber, None), log, max_pending=10)
    worker.start()
    try:
        feed_segmented(VadSegmenter(settings.vad), worker.submit, blocks_of(np.concatenate(audios)))
    finally:
        assert worker.stop()
    finals = [r.caption for r in log.records if r.caption.is_final and r.caption.text]
    assert len(finals) >= 3, [c.text for c in finals]  # 35 s at max 15 s: split at least twice
    reference = [w for r in rows for w in _words(r["text"])]
    pieces = [_words(c.text) for c in finals]
    hypothesis = [w for piece in pieces for w in piece]
    seams = np.cumsum([len(p) for p in pieces])[:-1]
    at = 0  # hypothesis words consumed so far
    near_seam = []
    for word in align(reference, hypothesis):
        if any(abs(at - seam) <= 2 for seam in seams):
            near_seam.append(word)
        if word.op != DELETION:
            at += 1
    lost_or_doubled = [(w.op, w.ref, w.hyp) for w in near_seam if w.op in (DELETION, INSERTION)]
    assert not lost_or_doubled, (lost_or_doubled, [c.text for c in finals])
    joined = count_errors(reference, hypothesis).wer
    one_by_one = count_errors(reference, [w for a in audios for w in _words(models.transcriber.transcribe(a).text)]).wer
    print(f"WER split {joined:.3f}, clip by clip {one_by_one:.3f}; captions: {[c.text for c in finals]}")
    assert joined <= one_by_one + 0.02
