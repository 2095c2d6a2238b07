"""Microphone capture: 16 kHz mono float32 AudioBlocks in a bounded queue, whatever the device.

The PortAudio callback only copies the block and its time into a queue and returns. One
"capture" thread does everything else: opens the stream (at 16 kHz if the device takes it, else
at its own rate with a streaming soxr resampler), cuts the audio into `block_ms` blocks, and
watches the stream. A device that fails or disappears shows up in PortAudio as a stream that
finishes on its own (`finished_callback`, `stream.active` False; nothing is raised) or, when
none is left, as a PortAudioError on open; either way the thread reports it through `on_error`
and reopens with back-off (0.5 s, 1 s, 2 s, … up to `backoff_max_s`) until it works again,
then calls `on_error(None)`.

`FileSource` offers the same surface for a recording (soak runs, benchmarks, tests).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soxr

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError
from subtone.service.events import AudioBlock

log = logging.getLogger(__name__)

QUEUE_SECONDS = 10.0
"""Blocks kept when nobody reads them; the oldest go first."""
LOST_REPORT_S = 0.5
"""Lost audio is logged again after this much more is lost."""
STALL_S = 2.0
"""An open stream that delivers nothing for this long is treated as lost and reopened."""
BACKOFF_START_S = 0.5
CALLBACK_MS = 90
"""Audio per PortAudio callback, cut into block_ms blocks afterwards. Measured with the daemon
idle in push-to-talk mode: 30 ms callbacks cost 1.4-1.5 % of a core, 90 ms 0.7-0.9 % (each
callback wakes two threads); the price is up to 60 ms later delivery."""

ErrorCallback = Callable[[str | None], None]


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    default_rate: float
    host_api: str
    is_default: bool


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise SubtoneError(f"audio input needs the PortAudio library ({exc}); install libportaudio2") from None
    except ModuleNotFoundError:
        raise SubtoneError("audio input needs sounddevice; install the live extra: pip install -e '.[live]'") from None
    return sd


_PORTAUDIO_LIST_LOCK = threading.Lock()
"""Re-reading the device list restarts PortAudio; no other thread may query it meanwhile (the
tray lists devices on the main thread while the capture thread reopens)."""


def list_input_devices(refresh: bool = False) -> list[InputDevice]:
    """Every device with input channels; `refresh` re-reads PortAudio's list (devices come and go).

    Only refresh with no stream open (the capture thread does, between streams)."""
    sd = _sounddevice()
    with _PORTAUDIO_LIST_LOCK:
        if refresh:
            sd._terminate()
            sd._initialize()
        default_in = sd.default.device[0]
        apis = sd.query_hostapis()
        return [
            InputDevice(d["index"], d["name"], float(d["default_samplerate"]), apis[d["hostapi"]]["name"], d["index"] == default_in)
            for d in sd.query_devices()
            if d["max_input_channels"] > 0
        ]


def resolve_device(spec: str, devices: list[InputDevice]) -> InputDevice:
    """"" → the default input; digits → that index; otherwise the first name containing `spec`."""
    spec = spec.strip()
    if not devices:
        raise SubtoneError("no microphone found (PortAudio lists no input device)")
    if not spec:
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if spec.isdigit():
        for d in devices:
            if d.index == int(spec):
                return d
        raise SubtoneError(f"no input device with index {spec}; `subtone devices` lists them")
    for d in devices:
        if spec.lower() in d.name.lower():
            return d
    raise SubtoneError(f"no input device named like '{spec}'; `subtone devices` lists them")


class BlockCutter:
    """Turns chunks of any length (at 16 kHz) into blocks of exactly `block_len` samples, with times.

    Block times run on the sample count, so they increase by exactly one block each. The time
    given with each chunk (when its callback ran, minus its length) is only an estimate: callbacks
    come late by a varying amount, never early. So the clock jumps forward only for a real gap
    (audio lost: more than `REANCHOR_S` behind the estimate) and is pulled back towards an
    estimate earlier than itself by at most `SLEW_S` per chunk, keeping block times increasing.
    """

    REANCHOR_S = 0.2
    SLEW_S = 0.005

    def __init__(self, block_len: int) -> None:
        self.block_len = block_len
        self._pending = np.zeros(0, dtype=np.float32)
        self._t: float | None = None
        """Time of the first pending sample."""

    def cut(self, samples: np.ndarray, t_estimate: float) -> list[AudioBlock]:
        if self._t is None:
            self._t = t_estimate
        else:
            drift = t_estimate - (self._t + self._pending.size / SAMPLE_RATE)
            if drift > self.REANCHOR_S:
                self._t += drift
            elif drift < 0:
                self._t += max(drift, -self.SLEW_S)
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        blocks = []
        n = self.block_len
        while self._pending.size >= n:
            blocks.append(AudioBlock(self._pending[:n].copy(), self._t))
            self._pending = self._pending[n:]
            self._t += n / SAMPLE_RATE
        return blocks


class _BoundedBlocks:
    """A queue that drops its oldest block instead of blocking the producer (counted in `dropped_samples`)."""

    def __init__(self, maxsize: int) -> None:
        self.queue: queue.Queue[AudioBlock] = queue.Queue(maxsize=maxsize)
        self.dropped_samples = 0

    def put(self, block: AudioBlock) -> None:
        while True:
            try:
                self.queue.put_nowait(block)
                return
            except queue.Full:
                try:
                    self.dropped_samples += self.queue.get_nowait().samples.size
                except queue.Empty:
                    pass


class _CaptureThread:
    """Start/stop for an audio source whose `_run` loop lives on its own thread until `_stop` is set,
    and the one way it reports trouble (`_report`: logged once per new message, then `on_error`)."""

    _stop: threading.Event
    _thread: threading.Thread | None
    _run: Callable[[], None]
    _on_error: ErrorCallback
    error: str | None = None

    def _report(self, message: str | None) -> None:
        """A new problem (or None: it works again) goes to the log and to on_error; a repeat does not."""
        if message == self.error:
            return
        self.error = message
        if message:
            log.warning("%s", message)
        self._on_error(message)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


class MicrophoneCapture(_CaptureThread):
    """`start()`, read `blocks` (a queue.Queue of AudioBlock), `set_device(spec)`, `stop()`."""

    def __init__(
        self,
        device: str = "",
        block_ms: int = 30,
        on_error: ErrorCallback = lambda message: None,
        backoff_max_s: float = 10.0,
        latency_ms: int = 0,
        on_devices: Callable[[list[str]], None] = lambda names: None,
    ) -> None:
        self._on_devices = on_devices
        self._device_names: list[str] | None = None
        self._spec = device
        self._latency_ms = latency_ms
        self._block_len = SAMPLE_RATE * block_ms // 1000
        self._block_ms = block_ms
        self._on_error = on_error
        self._backoff_max_s = backoff_max_s
        self._out = _BoundedBlocks(int(QUEUE_SECONDS * 1000 / block_ms))
        self.blocks = self._out.queue
        self._raw: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(maxsize=int(QUEUE_SECONDS * 1000 / block_ms))
        self._raw_dropped_frames = 0
        self._lost_reported_s = 0.0
        self._stop = threading.Event()
        self._reopen = threading.Event()
        self._thread: threading.Thread | None = None
        self.device_name = device or "default"
        self.error: str | None = None
        self.stream_rate: float | None = None
        self.opened = threading.Event()
        """Set while a stream is open and delivering."""

    # -- control, any thread ----------------------------------------------------------

    def set_device(self, spec: str) -> None:
        """Switch microphone: the capture thread closes the stream and opens the new one."""
        self._spec = spec
        self._reopen.set()

    # -- the PortAudio callback: copy and return ---------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            self._raw.put_nowait((indata.copy(), time.monotonic() - frames / (self.stream_rate or SAMPLE_RATE)))
        except queue.Full:
            self._raw_dropped_frames += frames

    @property
    def lost_seconds(self) -> float:
        """Audio thrown away since start because a consumer fell more than QUEUE_SECONDS behind."""
        rate = self.stream_rate or SAMPLE_RATE
        return self._raw_dropped_frames / rate + self._out.dropped_samples / SAMPLE_RATE

    def _log_lost_audio(self) -> None:
        """One warning per LOST_REPORT_S of newly lost audio, so lost speech shows in the log."""
        lost = self.lost_seconds
        if lost - self._lost_reported_s >= LOST_REPORT_S:
            log.warning("audio lost: %.1f s in all so far (the trigger or the capture fell behind)", lost)
            self._lost_reported_s = lost

    # -- the capture thread ------------------------------------------------------------
    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            self._reopen.clear()
            try:
                stream, resampler = self._open()
            except SubtoneError as exc:
                self._report(str(exc))
            except Exception as exc:  # PortAudioError and friends: the device is not there
                log.info("opening microphone '%s' failed: %s", self.device_name, _one_line(exc))
                self._report(f"microphone '{self.device_name}' unavailable: {in_words(exc)}")
            else:
                why = self._pump(stream, resampler)
                _close(stream)
                self.opened.clear()
                if why is None:  # stop or switch asked for
                    backoff = BACKOFF_START_S
                    continue
                self._report(f"microphone '{self.device_name}' unavailable: {why}")
                backoff = BACKOFF_START_S  # it worked until now: retry soon
            if self._stop.wait(backoff) or self._reopen.is_set():
                backoff = BACKOFF_START_S
                continue
            backoff = min(backoff * 2, self._backoff_max_s)
        log.info("capture stopped; audio lost: %.1f s", self.lost_seconds)

    def _open(self) -> tuple[Any, Any]:
        sd = _sounddevice()
        devices = list_input_devices(refresh=True)
        names = [d.name for d in devices]
        if names != self._device_names:  # a microphone came or went: the tray's menu follows
            self._device_names = names
            self._on_devices(names)
        device = resolve_device(self._spec, devices)
        self.device_name = device.name
        rate = float(SAMPLE_RATE)
        try:
            sd.check_input_settings(device=device.index, channels=1, dtype="float32", samplerate=rate)
        except Exception:
            rate = device.default_rate
        self.stream_rate = rate
        resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self._finished = threading.Event()
        while not self._raw.empty():
            self._raw.get_nowait()
        stream = sd.InputStream(
            device=device.index,
            samplerate=rate,
            channels=1,
            dtype="float32",
            blocksize=int(rate * CALLBACK_MS / 1000),
            latency=self._latency_ms / 1000 if self._latency_ms else "high",
            callback=self._callback,
            finished_callback=self._finished.set,
        )
        stream.start()
        return stream, resampler

    def _pump(self, stream: Any, resampler: Any) -> str | None:
        """Move audio from the callback to `blocks` until told to stop (None) or the device fails."""
        cutter = BlockCutter(self._block_len)
        last_data = time.monotonic()
        while not self._stop.is_set() and not self._reopen.is_set():
            try:
                chunk, t = self._raw.get(timeout=0.1)
            except queue.Empty:
                if self._finished.is_set() or not stream.active:
                    return "the audio stream stopped (device removed or failed)"
                if time.monotonic() - last_data > STALL_S:
                    return f"no audio for {STALL_S:.0f} s"
                continue
            if not self.opened.is_set():
                self.opened.set()
                log.info("microphone '%s' open at %s Hz", self.device_name, self.stream_rate)
                self._report(None)
            last_data = time.monotonic()
            mono = chunk[:, 0] if chunk.ndim == 2 else chunk
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            for block in cutter.cut(np.ascontiguousarray(mono, dtype=np.float32), t):
                self._out.put(block)
            self._log_lost_audio()
        return None


class FileSource(_CaptureThread):
    """A recording played as if it were a microphone (real time, or as fast as it is read)."""

    def __init__(self, path: str | Path, block_ms: int = 30, realtime: bool = True, loop: bool = False) -> None:
        self._audio = load_audio(path)
        self._block_len = SAMPLE_RATE * block_ms // 1000
        self._realtime = realtime
        self._loop = loop
        self.blocks: queue.Queue[AudioBlock] = queue.Queue(maxsize=0 if realtime else 64)
        self.device_name = f"file {Path(path).name}"
        self.error: str | None = None
        self.finished = threading.Event()
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None


    def set_device(self, spec: str) -> None:
        log.info("file input: microphone switch to '%s' ignored", spec)

    def _run(self) -> None:
        self.opened.set()
        n = self._block_len
        t0 = time.monotonic()
        t = t0
        while not self._stop.is_set():
            for i in range(0, len(self._audio) - n + 1, n):
                if self._stop.is_set():
                    break
                if self._realtime:
                    delay = t - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    self.blocks.put(AudioBlock(self._audio[i : i + n], t))
                else:
                    while not self._stop.is_set():
                        try:
                            self.blocks.put(AudioBlock(self._audio[i : i + n], t), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                t += n / SAMPLE_RATE
            if not self._loop:
                break
        self.finished.set()


def _close(stream: Any) -> None:
    try:
        stream.abort()
    except Exception:
        pass
    try:
        stream.close()
    except Exception:
        log.debug("closing the stream failed", exc_info=True)


# PortAudio's errors as a person reads them: (pattern in its message, what it means).
PORTAUDIO_WORDS = (
    ("-9985", "busy: another program is using it"),  # paDeviceUnavailable
    ("Device unavailable", "busy: another program is using it"),
    ("-9996", "not found: unplugged, or a name that matches no microphone"),  # paInvalidDevice
    ("-9997", "it cannot record at any rate subtone can use"),  # paInvalidSampleRate
    ("-9998", "it has no mono or stereo input"),  # paInvalidChannelCount
    ("error -5", "it stopped answering: unplugged, or the sound system restarted"),  # ALSA EIO under -9999
    ("error -19", "it is gone: unplugged"),  # ALSA ENODEV
    ("-9999", "the sound system refused it"),  # paUnanticipatedHostError, no better clue
)


def in_words(exc: BaseException) -> str:
    """An audio error for the tray and the overlay: words first, PortAudio's own text only when unknown."""
    text = _one_line(exc)
    for pattern, words in PORTAUDIO_WORDS:
        if pattern in text:
            return words
    return text


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
