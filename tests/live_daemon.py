"""Runs `subtone run` as a real subprocess for end-to-end tests and reads what it reports.

The daemon writes every caption and state change to an events JSON-lines file
(`--events-jsonl`); `LiveDaemon` waits on that file. Each daemon gets its own runtime dir (so
the single-instance lock is private to the test), data dir and history file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio


TEST_MODEL = "whisper-tiny.en-int8"
"""Daemons in tests run the small English model unless a test names another (see conftest)."""


def write_config(folder: Path, **sections: dict) -> Path:
    sections.setdefault("asr", {}).setdefault("model", TEST_MODEL)
    # The waveform CNN needs no Whisper base beside tiny.en: the same emotion model whichever tests
    # ran before. The default head on Whisper base runs in test_live_service's hotkey test.
    sections.setdefault("emotion", {}).setdefault("model", "emotion-cnn")
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def padded_clip(src: Path, dest: Path, before_s: float, after_s: float, noise_dbfs: float | None = None) -> Path:
    """The clip with silence (or quiet dither) before and after, as 16 kHz WAV."""
    audio = load_audio(src)
    pad = lambda s: np.zeros(int(s * SAMPLE_RATE), dtype=np.float32)  # noqa: E731
    out = np.concatenate([pad(before_s), audio, pad(after_s)])
    if noise_dbfs is not None:
        out = out + np.random.default_rng(3).standard_normal(out.size).astype(np.float32) * 10 ** (noise_dbfs / 20)
    sf.write(dest, out, SAMPLE_RATE)
    return dest


def noise(seconds: float, dbfs: float, kind: str = "pink") -> np.ndarray:
    """Steady white or pink noise at `dbfs` (RMS), 16 kHz float32; the same every time."""
    rng = np.random.default_rng(5)
    n = int(seconds * SAMPLE_RATE)
    if kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(spectrum.size, dtype=float)
        f[0] = 1.0
        out = np.fft.irfft(spectrum / np.sqrt(f), n)
    elif kind == "white":
        out = rng.standard_normal(n)
    else:
        raise ValueError(kind)
    return (out / out.std() * 10 ** (dbfs / 20)).astype(np.float32)


def fade_in(audio: np.ndarray, seconds: float, from_db: float) -> np.ndarray:
    """The first `seconds` rise steadily in dB from `from_db` (relative) to full level, as a fan spins up."""
    n = min(audio.size, int(seconds * SAMPLE_RATE))
    gain = np.ones(audio.size, dtype=np.float32)
    gain[:n] = 10 ** (np.linspace(from_db, 0.0, n) / 20)
    return audio * gain


def write_wav(dest: Path, audio: np.ndarray) -> Path:
    sf.write(dest, audio.astype(np.float32), SAMPLE_RATE)
    return dest


def noise_file(dest: Path, seconds: float, dbfs: float, kind: str = "pink") -> Path:
    return write_wav(dest, noise(seconds, dbfs, kind))


class LiveDaemon:
    def __init__(self, folder: Path, args: list[str], env: dict[str, str], config: Path, runtime: Path | None = None) -> None:
        self.folder = folder
        self.events_path = folder / "events.jsonl"
        self.log_path = folder / "daemon.log"
        runtime = runtime or folder / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        self.env = {
            **env,
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"),
            "QT_QPA_PLATFORM": "xcb",
            "PYTHONUNBUFFERED": "1",
        }
        self.command = [sys.executable, "-m", "subtone.service.cli.main", "-v", "--config", str(config), "run",
                        "--events-jsonl", str(self.events_path), *args]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.events_path.exists():
            return []
        rows = [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]
        return [r for r in rows if kind is None or r["type"] == kind]

    def captions(self) -> list[dict]:
        return [c for c in self.events("caption") if c["is_final"]]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) while waiting for {what}:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{self.log()[-3000:]}")

    def wait_ready(self, timeout: float = 60) -> dict:
        return self.wait_for(lambda: self.events("ready"), timeout, "the daemon to start")[0]

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def env_for(pulse_server: str | None = None, display: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if pulse_server:
        env["PULSE_SERVER"] = pulse_server
    if display:
        env["DISPLAY"] = display
    return env
