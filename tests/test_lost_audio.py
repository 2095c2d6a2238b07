"""Audio thrown away when nobody keeps up is counted and logged (no device needed: the PortAudio
callback and the block queue are fed directly, as PortAudio and the capture thread would)."""

from __future__ import annotations

import logging

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.capture import QUEUE_SECONDS, MicrophoneCapture
from subtone.service.events import AudioBlock

CHUNK = 480  # 30 ms


def test_callbacks_past_a_full_queue_are_counted_and_logged_as_lost_audio(caplog):
    capture = MicrophoneCapture("", block_ms=30)
    chunk = np.zeros((CHUNK, 1), np.float32)
    fits = round(QUEUE_SECONDS / 0.03)
    for _ in range(fits + 100):  # nobody reads: the last 100 chunks cannot be queued
        capture._callback(chunk, CHUNK, None, None)
    assert capture.lost_seconds == 100 * CHUNK / SAMPLE_RATE
    with caplog.at_level(logging.WARNING):
        capture._log_lost_audio()
        capture._log_lost_audio()  # nothing new lost: no second line
    lines = [r.getMessage() for r in caplog.records if "audio lost" in r.getMessage()]
    assert lines == ["audio lost: 3.0 s in all so far (the trigger or the capture fell behind)"]


def test_blocks_nobody_takes_push_out_the_oldest_and_count_as_lost():
    capture = MicrophoneCapture("", block_ms=30)
    fits = capture.blocks.maxsize
    for i in range(fits + 10):
        capture._out.put(AudioBlock(np.zeros(CHUNK, np.float32), i * 0.03))
    assert capture.lost_seconds == 10 * CHUNK / SAMPLE_RATE
    assert capture.blocks.get_nowait().t_start == 10 * 0.03  # the oldest went first


def test_portaudio_errors_reach_the_user_in_words():
    from subtone.service.audio.capture import in_words

    raw = "Error starting stream: Unanticipated host error [PaErrorCode -9999]: 'ALSA error -5' [ALSA error -5]"
    assert in_words(RuntimeError(raw)) == "it stopped answering: unplugged, or the sound system restarted"
    assert in_words(RuntimeError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")).startswith("busy")
    assert in_words(RuntimeError("something new\nsecond line")) == "something new"  # unknown: its first line
