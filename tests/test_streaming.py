"""Streaming partial captions with the real Whisper model: partials before the speaker finishes,
steady words, finals that preempt partials, one final per utterance, finals as good as without
streaming, and the I/O-bound decoder path giving the same tokens as the plain one."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from conftest import ASR_DEV, JFK, TEST_MODEL
from subtone.config import ConfigError, load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.app.controller import load_models
from subtone.service.events import UtteranceAudio, UtteranceEnded, UtteranceStarted
from subtone.export.evaluation.pipeline_replay import CaptionLog, feed_utterance
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.asr.recognizer import CancelToken, DecodeCancelled
from subtone.service.asr.whisper.loop_guard import final_token_cap, loop_start, partial_token_cap, strip_repeats
from subtone.service.captioning.partials import PartialPolicy
from subtone.export.evaluation.text_normalize import normalize_english
from subtone.service.events import TOO_SHORT
from subtone.export.evaluation.wer import count_errors


@pytest.fixture(scope="module")
def whisper(whisper_model_dir):
    settings = load_settings(overrides={"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL, "emotion.enabled": False})
    return load_models(settings).transcriber


def start_worker(transcriber, log, policy=PartialPolicy()):
    worker = RecognizerWorker(lambda: (transcriber, None), log, partial_policy=policy)
    worker.start()
    assert worker.models_ready.wait(60) and worker.model_error is None
    return worker


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("and so and so and so and", "and so"),
        ("and so my fellow mirror and so my fellow mirror and so my", "and so my fellow mirror"),
        ("And so my fellow Americans. And so my fellow Americans.", "And so my fellow Americans."),
        ("asked, asked, asked, asked,", "asked,"),
        ("ask not what your country can do", "ask not what your country can do"),
        ("", ""),
    ],
)
def test_strip_repeats_drops_a_trailing_decoder_loop(raw, clean):
    assert strip_repeats(raw) == clean


def test_repeat_guard_cuts_the_third_copy_of_a_phrase_and_keeps_speech_said_twice():
    assert loop_start([1, 2, 3, 1, 2, 3]) is None  # "can you hear me? can you hear me?"
    assert loop_start([9, 1, 2, 3, 1, 2, 3, 1, 2, 3]) == 7
    assert loop_start([5, 5, 5, 5]) is None  # one- and two-token repeats are real speech often enough
    assert loop_start([]) is None


def test_streaming_settings_load_and_validate():
    policy = PartialPolicy.from_settings(load_settings(overrides={"streaming.partial_interval_s": 1.0}).streaming)
    assert policy is not None and policy.interval_s == 1.0 and policy.hysteresis.hold_updates == 2
    assert PartialPolicy.from_settings(load_settings(overrides={"streaming.enabled": False}).streaming) is None
    with pytest.raises(ConfigError, match="streaming.partial_interval_s"):
        load_settings(overrides={"streaming.partial_interval_s": 0.0})


def test_partial_policy_waits_for_min_audio_and_interval():
    p = PartialPolicy(interval_s=0.5, min_audio_s=1.0)
    assert not p.is_due(int(0.9 * SAMPLE_RATE), 0)
    assert p.is_due(SAMPLE_RATE, 0)
    assert not p.is_due(int(1.4 * SAMPLE_RATE), SAMPLE_RATE)
    assert p.is_due(int(1.5 * SAMPLE_RATE), SAMPLE_RATE)


def test_token_caps_grow_with_the_audio_and_a_partial_gets_fewer_than_a_final():
    assert partial_token_cap(2 * SAMPLE_RATE, 6.0) == 16
    assert final_token_cap(2 * SAMPLE_RATE) == 32
    assert partial_token_cap(4 * SAMPLE_RATE, 6.0) > partial_token_cap(2 * SAMPLE_RATE, 6.0)


def test_whisper_partials_are_capped_and_a_cancelled_decode_raises(whisper):
    audio = load_audio(JFK)
    assert whisper.capabilities.cancellable
    partial = whisper.transcribe(audio[: 3 * SAMPLE_RATE], partial=True)
    assert 0 < len(partial.tokens) <= partial_token_cap(3 * SAMPLE_RATE, whisper.options.max_partial_tokens_per_s)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(DecodeCancelled):
        whisper.transcribe(audio, partial=True, cancel=cancel)


def test_io_bound_decoder_steps_give_the_same_tokens_as_plain_steps_on_cpu(whisper):
    """The CUDA path's I/O binding, run on the CPU provider (no GPU here; the same code binds to cuda)."""
    audio = load_audio(JFK)
    assert not whisper.io_binding  # CPU default: plain numpy steps
    plain = whisper.transcribe(audio)
    try:
        whisper.io_binding = True
        bound = whisper.transcribe(audio)
        short = whisper.decode(audio[: 3 * SAMPLE_RATE], max_tokens=10)
    finally:
        whisper.io_binding = False
    assert bound.tokens == plain.tokens and len(plain.tokens) > 10
    assert bound.avg_logprob == pytest.approx(plain.avg_logprob, abs=1e-4)
    assert short.tokens == whisper.decode(audio[: 3 * SAMPLE_RATE], max_tokens=10).tokens


@pytest.mark.slow
def test_first_partial_comes_before_the_speaker_finishes_and_words_stay_put(whisper):
    audio = load_audio(JFK)  # 11 s, fed in 30 ms blocks at real pace
    log = CaptionLog()
    worker = start_worker(whisper, log)
    try:
        t_start, t_end = feed_utterance(worker.submit, 1, audio, pace=1.0)
        assert log.wait_final(1, 60)
    finally:
        assert worker.stop()
    records = log.of(1)
    partials = [r for r in records if not r.caption.is_final]
    finals = [r for r in records if r.caption.is_final]
    assert len(finals) == 1 and records[-1] is finals[0], "exactly one final, after every partial"
    assert len(partials) >= 3, [r.caption.text for r in records]
    assert partials[0].t < t_end - 5.0, (partials[0].t - t_start, t_end - t_start)
    stable = [r.caption.stable_text.split() for r in partials]
    for before, after in zip(stable, stable[1:]):  # committed words only grow, never change
        assert [w.lower().strip(",.") for w in after[: len(before)]] == [w.lower().strip(",.") for w in before]
    for r in partials:
        assert r.caption.text.startswith(r.caption.stable_text)
    final = finals[0].caption
    assert final.text == whisper.transcribe(audio).text.strip() and final.stable_text == final.text


@pytest.mark.slow
def test_a_final_preempts_the_partial_decode_in_flight(whisper):
    audio = load_audio(JFK)
    log = CaptionLog()
    worker = start_worker(whisper, log, PartialPolicy(interval_s=0.5, min_audio_s=1.0))
    try:
        worker.submit(UtteranceStarted(1, 0.0, "hotkey"))
        worker.submit(UtteranceAudio(1, audio[: 10 * SAMPLE_RATE]))
        deadline = time.monotonic() + 10
        while worker._cancel is None and time.monotonic() < deadline:  # a partial decode is running
            time.sleep(0.005)
        worker.submit(UtteranceAudio(1, audio[10 * SAMPLE_RATE :]))
        worker.submit(UtteranceEnded(1, 11.0, "released"))
        assert log.wait_final(1, 60)
    finally:
        assert worker.stop()
    assert worker.stats().preempted == 1
    assert [r.caption.is_final for r in log.of(1)] == [True]  # the aborted partial never showed


@pytest.mark.slow
def test_a_shown_partial_of_a_blip_is_taken_back_with_an_empty_final(whisper):
    audio = load_audio(JFK)[: 2 * SAMPLE_RATE]
    log = CaptionLog()
    worker = start_worker(whisper, log)
    try:
        worker.submit(UtteranceStarted(1, 0.0, "voice"))
        worker.submit(UtteranceAudio(1, audio))
        deadline = time.monotonic() + 20
        while log.partials == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.partials >= 1
        worker.submit(UtteranceEnded(1, 2.0, TOO_SHORT))
        assert log.wait_final(1, 20)
    finally:
        assert worker.stop()
    final = log.of(1)[-1].caption
    assert final.is_final and final.text == ""  # the overlay removes the line
    assert worker.stats().discarded == 1


def _asr_dev_rows(limit: int) -> list[dict]:
    rows = [json.loads(line) for line in (ASR_DEV / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return rows[:limit]


def _wer(pairs: list[tuple[str, str]]) -> float:
    errors = words = 0
    for ref, hyp in pairs:
        counts = count_errors(normalize_english(ref).split(), normalize_english(hyp).split())
        errors += counts.errors
        words += counts.ref_words
    return errors / words


@pytest.mark.slow
def test_final_wer_with_streaming_matches_without_on_asr_dev(whisper):
    """The first 5 asr-dev clips fed at 4x real pace (partials busy all the time) vs plain transcription;
    bench/streaming_latency.py --wer does all of asr-dev."""
    rows = _asr_dev_rows(5)
    log = CaptionLog()
    worker = start_worker(whisper, log)
    streamed, plain = [], []
    try:
        for uid, row in enumerate(rows, 1):
            audio = load_audio(ASR_DEV / row["audio"])
            feed_utterance(worker.submit, uid, audio, pace=4.0)
            assert log.wait_final(uid, 60)
            streamed.append((row["text"], log.of(uid)[-1].caption.text))
            plain.append((row["text"], whisper.transcribe(audio).text))
    finally:
        assert worker.stop()
    assert log.partials >= len(rows), "partials ran while the clips played"
    assert all(n == 1 for n in log.finals.values()) and len(log.finals) == len(rows)
    assert abs(_wer(streamed) - _wer(plain)) <= 0.02, (_wer(streamed), _wer(plain))


def _voiced(seconds: float, pad: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    silence = np.zeros(int(pad * SAMPLE_RATE), np.float32)
    return np.concatenate([silence, tone, silence])


def test_a_repeat_faster_than_anyone_speaks_is_dropped_and_speech_said_twice_is_kept():
    from subtone.service.asr.whisper.loop_guard import drop_unspoken_repeat, voiced_seconds

    audio = _voiced(1.7)  # 1.7 s of sound in 3.7 s of audio
    assert voiced_seconds(audio) == pytest.approx(1.7, abs=0.05)
    twice = "장기자랑 1등은 우리 차지야. 장기자랑 1등은 우리 차지야."  # 24 letters in 1.7 s: 14 a second
    assert drop_unspoken_repeat(twice, audio, "ko") == "장기자랑 1등은 우리 차지야."
    said_twice = "can you hear me? can you hear me?"  # 8 words in 2 s of voice: a human pace
    assert drop_unspoken_repeat(said_twice, _voiced(2.0), "en") == said_twice
    assert drop_unspoken_repeat("no repeat here at all", _voiced(0.3), "en") == "no repeat here at all"
