"""Microphone capture through a real PulseAudio virtual microphone (tests/pulse_env.py)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ASR_DEV
from subtone.service.audio.capture import BlockCutter, MicrophoneCapture, list_input_devices, resolve_device
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError

CLIP = ASR_DEV / "en" / "ljspeech" / "LJ001-0002.flac"  # 1.9 s


def test_block_cutter_makes_exact_blocks_with_continuous_times():
    cutter = BlockCutter(480)
    blocks = cutter.cut(np.arange(1000, dtype=np.float32), 10.0) + cutter.cut(np.arange(500, dtype=np.float32), 10.0625)
    assert [len(b.samples) for b in blocks] == [480, 480, 480]
    assert [round(b.t_start, 4) for b in blocks] == [10.0, 10.03, 10.06]
    assert np.concatenate([b.samples for b in blocks])[960:970].tolist() == list(range(960, 970))


def test_block_cutter_ignores_late_callbacks_slews_to_early_ones_and_jumps_gaps():
    cutter = BlockCutter(480)
    chunk = np.zeros(1440, dtype=np.float32)  # 90 ms
    times = [b.t_start for b in cutter.cut(chunk, 5.0)]
    times += [b.t_start for b in cutter.cut(chunk, 5.09 + 0.08)]  # callback 80 ms late: no effect
    assert times[-1] == pytest.approx(5.15)
    times += [b.t_start for b in cutter.cut(chunk, 5.18 - 0.02)]  # earlier than the clock: 5 ms back at most
    assert times[-3] == pytest.approx(5.175)
    times += [b.t_start for b in cutter.cut(chunk, 9.0)]  # audio lost: jump
    assert times[-3] == pytest.approx(9.0)
    assert np.all(np.diff(times) > 0.02)


def test_resolve_device_by_default_index_and_name():
    from subtone.service.audio.capture import InputDevice

    devices = [InputDevice(0, "USB Mic", 48000, "ALSA", False), InputDevice(3, "pulse", 44100, "ALSA", True)]
    assert resolve_device("", devices).index == 3
    assert resolve_device("0", devices).name == "USB Mic"
    assert resolve_device("usb", devices).index == 0
    with pytest.raises(SubtoneError, match="no input device named like 'webcam'"):
        resolve_device("webcam", devices)
    with pytest.raises(SubtoneError, match="no microphone found"):
        resolve_device("", [])


def _drain(blocks: queue.Queue, seconds: float) -> list:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(blocks.get(timeout=0.05))
        except queue.Empty:
            pass
    return out


@pytest.mark.desktop
def test_capture_receives_the_played_clip(pulse_audio):
    errors: list = []
    capture = MicrophoneCapture("", block_ms=30, on_error=errors.append)
    capture.start()
    try:
        assert capture.opened.wait(10), f"stream did not open: {errors}"
        _drain(capture.blocks, 0.3)
        player = threading.Thread(target=pulse_audio.play, args=(CLIP,))
        player.start()
        blocks = _drain(capture.blocks, 3.0)
        player.join()
    finally:
        assert capture.stop()
    assert all(len(b.samples) == 480 and b.samples.dtype == np.float32 for b in blocks)
    assert np.all(np.diff([b.t_start for b in blocks]) > 0)
    got = np.concatenate([b.samples for b in blocks])
    ref = load_audio(CLIP)
    corr = np.correlate(got, ref, mode="valid") / (np.linalg.norm(ref) * np.sqrt(np.convolve(got**2, np.ones(len(ref)), "valid")) + 1e-9)
    assert corr.max() > 0.9, f"normalised cross-correlation {corr.max():.3f}"
    assert not [e for e in errors if e]


@pytest.mark.desktop
def test_device_list_shows_the_virtual_microphone(pulse_audio):
    names = [d.name for d in list_input_devices(refresh=True)]
    assert "pulse" in names
    out = subprocess.run(
        [sys.executable, "-m", "subtone.service.cli.main", "devices"], capture_output=True, text=True, env=pulse_audio.env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "pulse" in out.stdout and "*" in out.stdout and "Hz" in out.stdout
    monitors = out.stdout.split("system audio (monitors")[1]
    assert "speakers.monitor" in monitors and "test_sink.monitor" in monitors, out.stdout


@pytest.mark.desktop
def test_capture_reports_a_lost_device_and_recovers(pulse_audio):
    errors: list = []
    capture = MicrophoneCapture("", block_ms=30, on_error=errors.append, backoff_max_s=1.0)
    capture.start()
    try:
        assert capture.opened.wait(10)
        pulse_audio.unload_devices()
        deadline = time.monotonic() + 10
        while not any(errors) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert errors and errors[-1] and "unavailable" in errors[-1], errors
        pulse_audio.load_devices()
        deadline = time.monotonic() + 15
        while errors[-1] is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert errors[-1] is None, errors
        assert _drain(capture.blocks, 0.5), "no audio after the microphone came back"
    finally:
        pulse_audio.load_devices()
        assert capture.stop()


@pytest.mark.desktop
def test_switching_microphone_reopens_on_the_chosen_device(pulse_audio):
    errors: list = []
    capture = MicrophoneCapture("", block_ms=30, on_error=errors.append)
    capture.start()
    try:
        assert capture.opened.wait(10)
        first = capture.device_name
        target = next(d.name for d in list_input_devices() if d.name != first and d.name in ("pulse", "default"))
        capture.set_device(target)
        deadline = time.monotonic() + 10
        while capture.device_name != target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert capture.device_name == target
        assert capture.opened.wait(10)
        _drain(capture.blocks, 0.3)
        assert _drain(capture.blocks, 0.5), "no audio from the new device"
        assert not [e for e in errors if e]
    finally:
        assert capture.stop()
