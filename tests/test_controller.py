"""The controller in-process with the real Whisper model: modes, listening on/off, states, the hotkey.

The microphone is replaced by a queue the test fills with real speech blocks stamped with
CLOCK_MONOTONIC (the real capture is tested in test_audio_capture.py and end to end).
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from conftest import ASR_DEV, TEST_MODEL
from subtone.config import load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.app.controller import Controller, load_models
from subtone.service.events import AudioBlock, ServiceState

SPEECH = ASR_DEV / "en" / "ljspeech" / "LJ001-0002.flac"  # "in being comparatively modern." 1.9 s
BLOCK = 480


class QueueSource:
    def __init__(self) -> None:
        self.blocks: queue.Queue = queue.Queue()
        self.device_name = "test queue"
        self.devices: list[str] = []

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> bool:
        return True

    def set_device(self, spec: str) -> None:
        self.devices.append(spec)

    def play(self, audio: np.ndarray, on_block=None) -> None:
        """Real time: each 30 ms block is stamped with the time its first sample was 'heard'."""
        t0 = time.monotonic()
        for i in range(0, len(audio) - BLOCK + 1, BLOCK):
            t = t0 + i / SAMPLE_RATE
            delay = t + BLOCK / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.blocks.put(AudioBlock(audio[i : i + BLOCK].copy(), t))
            if on_block:
                on_block(i / SAMPLE_RATE)


@pytest.fixture(scope="module")
def models(whisper_model_dir):
    settings = load_settings(overrides={"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL, "streaming.enabled": False})
    return load_models(settings)


@pytest.fixture()
def controller(models, whisper_model_dir):
    settings = load_settings(overrides={"models.dir": str(whisper_model_dir), "asr.model": TEST_MODEL, "trigger.mode": "push-to-talk",
                                        "streaming.enabled": False})
    source = QueueSource()
    captions, states = [], []
    ctl = Controller(settings, source, on_caption=captions.append, on_state=states.append, models=lambda: models)
    ctl.start()
    assert ctl.worker.models_ready.wait(60)
    yield ctl, source, captions, states
    assert ctl.stop()


def speech_with_silence() -> np.ndarray:
    pad = np.zeros(SAMPLE_RATE, dtype=np.float32)
    return np.concatenate([pad, load_audio(SPEECH), pad])


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_push_to_talk_ignores_speech_without_the_key_and_captions_with_it(controller):
    ctl, source, captions, states = controller
    source.play(speech_with_silence())
    time.sleep(1.0)
    assert captions == []

    def key(t):
        if 0.8 <= t < 0.83:
            ctl.hotkey_pressed()
        if 3.2 <= t < 3.23:
            ctl.hotkey_released()

    source.play(speech_with_silence(), on_block=key)
    source.play(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))
    assert wait_for(lambda: captions)
    assert "comparatively modern" in captions[0].text.lower()
    seen = [s.state for s in states]
    assert seen[0] is ServiceState.LISTENING and ServiceState.HEARING in seen and ServiceState.RECOGNISING in seen
    assert wait_for(lambda: ctl.state().state is ServiceState.LISTENING)


def test_switching_to_voice_mode_captions_without_the_key(controller):
    ctl, source, captions, _ = controller
    ctl.set_mode("voice")
    ctl.hotkey_pressed()  # ignored in voice mode
    source.play(speech_with_silence())
    assert wait_for(lambda: captions)
    assert len(captions) == 1 and "modern" in captions[0].text.lower()
    with pytest.raises(ValueError, match="trigger mode"):
        ctl.set_mode("always")


def test_listening_off_captions_nothing_and_shows_idle(controller):
    ctl, source, captions, states = controller
    ctl.set_mode("voice")
    ctl.set_listening(False)
    assert ctl.state().state is ServiceState.IDLE and states[-1].state is ServiceState.IDLE
    source.play(speech_with_silence())
    time.sleep(1.0)
    assert captions == []
    ctl.set_listening(True)
    assert ctl.state().state is ServiceState.LISTENING


def test_in_both_modes_the_hotkey_takes_over_from_voice(controller):
    """Real VAD, real model, real key timing; the exact boundary rules are in test_trigger_stage.py."""
    ctl, source, captions, _ = controller
    ctl.set_mode("both")
    audio = speech_with_silence()
    pressed = []

    def key(t):  # pressed mid-sentence (1 s into the speech), released after it
        if 2.0 <= t < 2.03:
            pressed.append(time.monotonic())
            ctl.hotkey_pressed()
        if 3.3 <= t < 3.33:
            ctl.hotkey_released()

    source.play(audio, on_block=key)
    source.play(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert wait_for(lambda: len(captions) >= 2)
    time.sleep(0.5)
    voice, hotkey = captions  # the voice utterance ends where the key took over; the key's carries on
    assert "being" in voice.text.lower() and "being" not in hotkey.text.lower()
    assert "moder" in hotkey.text.lower()  # int8 hears the cropped "modern" as "moderate" at times
    assert voice.t_end == pytest.approx(pressed[0], abs=0.1) and hotkey.t_start < voice.t_end


def test_microphone_errors_show_and_clear(controller):
    ctl, source, _, states = controller
    ctl.microphone_error("microphone 'USB' unavailable: the audio stream stopped")
    assert ctl.state().state is ServiceState.ERROR and "USB" in states[-1].detail
    ctl.set_device("pulse")
    assert source.devices == ["pulse"]
    ctl.microphone_error(None)
    assert ctl.state().state is ServiceState.LISTENING
