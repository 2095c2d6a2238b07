"""A throwaway PulseAudio server with a virtual microphone, for tests (see desktop-testing.md).

Session fixture `pulse_audio` starts `pulseaudio` on a private socket with a null sink
("test_sink") and a source fed from its monitor ("test_mic", the default source), a second null
sink "speakers" as the default output (what the computer plays: its monitor is system audio), keeps the sink
busy with a silent `pacat` (without it the first captured block comes 1–2 s late), sets
PULSE_SERVER in os.environ (PortAudio reaches PulseAudio through ALSA's pulse plugin) and
returns a `PulseEnv`:

- `play(path)` / `play_async(path)`: play a file into the sink, i.e. "speak into the microphone";
  `play_async(path, SPEAKERS)`: play it as the computer would (a call, a video);
- `unload_devices()` / `load_devices()`: pull the microphone away and bring it back, as
  PortAudio sees a USB microphone unplugged (source and sink go, the stream finishes);
- `env`: os.environ with PULSE_SERVER, for subprocesses.

Registered by tests/conftest.py. A missing `pulseaudio` binary fails loudly: CI installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
from x11_env import stop_process

SINK = "test_sink"
SOURCE = "test_mic"
SPEAKERS = "speakers"


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found: the audio tests need it (apt packages in .ci/run)")
    return path


class PulseEnv:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = f"unix:{folder}/native"
        self.env = {**os.environ, "PULSE_SERVER": self.server}
        self._keepalive: subprocess.Popen | None = None

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            [_need("pactl"), *args], env=self.env, capture_output=True, text=True, timeout=10
        )
        if out.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def sources(self) -> list[str]:
        return [line.split("\t")[1] for line in self.pactl("list", "short", "sources").splitlines() if "\t" in line]

    def play_async(self, path: str | Path, sink: str = SINK) -> subprocess.Popen:
        return subprocess.Popen(
            [_need("paplay"), "-d", sink, str(path)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def play(self, path: str | Path, timeout: float = 120) -> None:
        proc = self.play_async(path)
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"paplay {path} failed: {err.decode(errors='replace').strip()}")

    def start_keepalive(self) -> None:
        self.stop_keepalive()
        self._keepalive = subprocess.Popen(
            [_need("pacat"), "--playback", "--latency-msec=20", "-d", SINK, "--rate=16000", "--channels=1",
             "--format=s16le", "/dev/zero"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_keepalive(self) -> None:
        if self._keepalive is not None:
            stop_process(self._keepalive)
            self._keepalive = None

    def unload_devices(self) -> None:
        """Remove the virtual microphone and its sink (PortAudio's open stream finishes)."""
        for module in ("module-remap-source", "module-null-sink"):  # the source hangs off the sink
            for line in self.pactl("list", "short", "modules").splitlines():
                fields = line.split("\t")
                if len(fields) > 1 and fields[1] == module:
                    self.pactl("unload-module", fields[0])
        self.stop_keepalive()

    def load_devices(self) -> None:
        sinks = [line.split("\t")[1] for line in self.pactl("list", "short", "sinks").splitlines() if "\t" in line]
        for sink in (SINK, SPEAKERS):  # unload_devices takes every null sink
            if sink not in sinks:
                self.pactl("load-module", "module-null-sink", f"sink_name={sink}")
        if SOURCE not in self.sources():
            self.pactl("load-module", "module-remap-source", f"source_name={SOURCE}", f"master={SINK}.monitor")
        self.pactl("set-default-sink", SPEAKERS)
        self.pactl("set-default-source", SOURCE)
        self.start_keepalive()


@contextlib.contextmanager
def running_pulse() -> Iterator[PulseEnv]:
    """Start PulseAudio with the virtual microphone; stop it and clean up on exit (benchmarks use this too)."""
    pulseaudio = _need("pulseaudio")
    folder = Path(tempfile.mkdtemp(prefix="subtone-pulse-"))
    pulse = PulseEnv(folder)
    config = folder / "test.pa"
    config.write_text(
        ".fail\n"
        f"load-module module-native-protocol-unix auth-anonymous=1 socket={folder}/native\n"
        f"load-module module-null-sink sink_name={SINK}\n"
        f"load-module module-remap-source source_name={SOURCE} master={SINK}.monitor\n"
        f"load-module module-null-sink sink_name={SPEAKERS}\n"
        f"set-default-sink {SPEAKERS}\n"
        f"set-default-source {SOURCE}\n"
    )
    env = {**pulse.env, "HOME": str(folder), "XDG_RUNTIME_DIR": str(folder), "XDG_CONFIG_HOME": str(folder)}
    proc = subprocess.Popen(
        [pulseaudio, "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
         "--log-target=stderr", "--log-level=error"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    previous = os.environ.get("PULSE_SERVER")
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pulseaudio exited with code {proc.returncode}")
            try:
                if SOURCE in pulse.sources():
                    break
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("pulseaudio did not come up within 10 s")
            time.sleep(0.05)
        os.environ["PULSE_SERVER"] = pulse.server
        pulse.start_keepalive()
        yield pulse
    finally:
        pulse.stop_keepalive()
        stop_process(proc)
        if previous is None:
            os.environ.pop("PULSE_SERVER", None)
        else:
            os.environ["PULSE_SERVER"] = previous
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pulse_audio() -> Iterator[PulseEnv]:
    with running_pulse() as pulse:
        yield pulse
