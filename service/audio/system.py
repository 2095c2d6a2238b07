"""What the computer itself plays (calls, videos), captured from a sound server's monitor source.

PortAudio through ALSA reaches only the default input, so the monitor of the default sink
(`@DEFAULT_MONITOR@`, or a chosen `<sink>.monitor`) is read with `parec`, the PulseAudio client
that PipeWire's pulse server answers too: 16 kHz mono float32 straight from the server, so no
resampling here. `parec` exiting (server gone, monitor removed) is reported like a lost
microphone and retried with back-off. A monitor delivers silence while nothing plays, so a quiet
stream is not an error here.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.capture import QUEUE_SECONDS, BlockCutter, ErrorCallback, _BoundedBlocks, _CaptureThread
from subtone.service.errors import SubtoneError

log = logging.getLogger(__name__)

DEFAULT_MONITOR = "@DEFAULT_MONITOR@"
READ_MS = 90
"""Audio per read from parec, cut into block_ms blocks afterwards (fewer wake-ups while idle)."""
BACKOFF_START_S = 0.5


@dataclass(frozen=True)
class Monitor:
    name: str
    description: str


def list_monitors() -> list[Monitor]:
    """The sound server's monitor sources (what each output plays), via `pactl`; [] without one."""
    pactl = shutil.which("pactl")
    if pactl is None:
        return []
    try:
        out = subprocess.run([pactl, "list", "short", "sources"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return []
    monitors = []
    for line in out.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) > 1 and fields[1].endswith(".monitor"):
            monitors.append(Monitor(fields[1], f"what {fields[1].removesuffix('.monitor')} plays"))
    return monitors


class SystemAudioCapture(_CaptureThread):
    """`start()`, read `blocks` (a queue.Queue of AudioBlock), `stop()`; like MicrophoneCapture."""

    def __init__(
        self,
        monitor: str = "",
        block_ms: int = 30,
        on_error: ErrorCallback = lambda message: None,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._monitor = monitor or DEFAULT_MONITOR
        self._block_len = SAMPLE_RATE * block_ms // 1000
        self._on_error = on_error
        self._backoff_max_s = backoff_max_s
        self._out = _BoundedBlocks(int(QUEUE_SECONDS * 1000 / block_ms))
        self.blocks = self._out.queue
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._proc_lock = threading.Lock()
        self.device_name = "system audio" if not monitor else f"system audio ({monitor})"
        self.error: str | None = None
        self.opened = threading.Event()

    @property
    def lost_seconds(self) -> float:
        return self._out.dropped_samples / SAMPLE_RATE

    def set_device(self, spec: str) -> None:
        self._monitor = spec or DEFAULT_MONITOR
        self._kill()  # the loop reopens on the new monitor

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        self._kill()
        return super().stop(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            why = self._record_once()
            if self._stop.is_set():
                break
            if why is None:  # switched monitor
                backoff = BACKOFF_START_S
                continue
            self._report(f"system audio unavailable: {why}")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._backoff_max_s)
        log.info("system audio capture stopped")

    def _record_once(self) -> str | None:
        """Read one parec run to its end: None when asked to (switch/stop), else why it ended."""
        try:
            proc = self._spawn()
        except SubtoneError as exc:
            return str(exc)
        cutter = BlockCutter(self._block_len)
        chunk_bytes = 4 * SAMPLE_RATE * READ_MS // 1000
        assert proc.stdout is not None
        while True:
            data = proc.stdout.read(chunk_bytes)
            if not data:
                break
            if not self.opened.is_set():
                self.opened.set()
                log.info("system audio open: %s", self._monitor)
                self._report(None)
            samples = np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4")
            for block in cutter.cut(samples.copy(), time.monotonic() - samples.size / SAMPLE_RATE):
                self._out.put(block)
        self.opened.clear()
        code = proc.wait()
        stderr = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        with self._proc_lock:
            asked = self._proc is not proc  # _kill() took it: a switch or stop
            if not asked:
                self._proc = None
        if asked:
            return None
        return f"parec exited ({code}): {stderr.splitlines()[-1] if stderr else 'no message'}"

    def _spawn(self) -> subprocess.Popen:
        parec = shutil.which("parec")
        if parec is None:
            raise SubtoneError("parec not found (install pulseaudio-utils: it works with PulseAudio and PipeWire)")
        command = [parec, f"--device={self._monitor}", f"--rate={SAMPLE_RATE}", "--channels=1",
                   "--format=float32le", f"--latency-msec={READ_MS}", "--raw"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._proc_lock:
            self._proc = proc
        return proc

    def _kill(self) -> None:
        with self._proc_lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
