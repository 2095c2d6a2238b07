"""A second `subtone run` says "already running" on screen, not only on stderr (people start it from
a menu), then exits 1; with --no-overlay or no display it only says it on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from x11_env import process_events_for

from live_daemon import write_config
from subtone.service.app.instance_lock import InstanceLock

pytestmark = pytest.mark.desktop


def _env(tmp_path: Path, display: str | None) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(XDG_RUNTIME_DIR=str(runtime), NO_AT_BRIDGE="1")
    if display:
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    return env


@pytest.fixture()
def held_lock(tmp_path):
    """Another subtone's lock: the same file the child finds in its runtime folder."""
    folder = tmp_path / "runtime" / "subtone"
    folder.mkdir(parents=True, mode=0o700)
    lock = InstanceLock(folder / "subtone.lock")
    assert lock.acquire()
    yield lock
    lock.release()


def _second(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    cfg = write_config(tmp_path, history={"enabled": False, "file": ""})
    return subprocess.Popen([sys.executable, "-m", "subtone.service.cli.main", "--config", str(cfg), "run", "--no-tray",
                             "--no-hotkey", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _visible_windows(pid: int, display: str) -> list[str]:
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid)], capture_output=True, text=True,
                         env={**os.environ, "DISPLAY": display}, timeout=10)
    return out.stdout.split()


def _geometry(wid: str, display: str) -> tuple[int, int, int, int]:
    out = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid], capture_output=True, text=True, check=True,
                         env={**os.environ, "DISPLAY": display}, timeout=10).stdout
    g = dict(line.split("=") for line in out.split())
    return int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])


def test_second_instance_shows_a_notice_on_screen_then_exits_1(tmp_path, held_lock, window_manager, qapp):
    from PySide6.QtGui import QGuiApplication

    started = time.monotonic()
    proc = _second(tmp_path, _env(tmp_path, window_manager))
    seen: list[str] = []
    light = 0
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if not seen:
                seen = _visible_windows(proc.pid, window_manager)
            if seen and not light:
                process_events_for(0.5)  # let it paint
                try:
                    x, y, w, h = _geometry(seen[0], window_manager)
                except subprocess.CalledProcessError:
                    break  # it went away meanwhile
                image = QGuiApplication.primaryScreen().grabWindow(0, x, y, w, h).toImage()
                # The banner's words are light grey on the dark backdrop: count light pixels.
                light = sum(1 for py in range(0, h, 2) for px in range(0, w, 2)
                            if min(image.pixelColor(px, py).getRgb()[:3]) > 150)
            time.sleep(0.1)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, stderr
    assert "already running" in stderr, stderr
    assert seen, "no window of the second instance appeared"
    assert light > 50, f"the notice window shows no text ({light} light pixels)"
    assert elapsed >= 3.5, f"the notice went after {elapsed:.1f} s: too quick to read"


@pytest.mark.parametrize("display", [True, False], ids=["no-overlay", "no-display"])
def test_without_overlay_or_display_it_only_says_so_on_stderr(tmp_path, held_lock, window_manager, display):
    env = _env(tmp_path, window_manager if display else None)
    proc = _second(tmp_path, env, *(["--no-overlay"] if display else []))
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            seen = seen or _visible_windows(proc.pid, window_manager)
            time.sleep(0.1)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "already running" in stderr, stderr
    assert not seen and "Traceback" not in stderr, stderr
