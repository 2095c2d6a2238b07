"""A throwaway X11 desktop for tests: Xvfb, a window manager + compositor, a session bus, a tray host.

Session fixtures (each starts once per test run, on first use, and is stopped at the end):

- `x_display`: Xvfb on a free display (1920x1080x24; has RECORD, SHAPE, XTEST, Composite);
  returns the DISPLAY string and sets os.environ["DISPLAY"].
- `window_manager`: openbox + xcompmgr on that display, ready (WM check and compositor
  selection owned) before it returns: a desktop "like a user's" (see desktop-testing.md).
- `dbus_session`: a private session bus; sets DBUS_SESSION_BUS_ADDRESS.
- `tray_host`: trayer (a freedesktop system tray), ready when it owns _NET_SYSTEM_TRAY_S0.
- `qapp`: the process's QApplication on that display (xcb).

Registered by tests/conftest.py. Everything missing (no Xvfb binary…) fails loudly: the
desktop tests are meant to run in CI, which installs the packages (.ci/run).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

SCREEN = (1920, 1080)


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found: the desktop tests need it (apt packages in .ci/run)")
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate, then kill if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)


def _selection_owned(display: str, atom_name: str) -> bool:
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        owner = d.get_selection_owner(d.intern_atom(atom_name))
        return owner != X.NONE and owner != 0
    finally:
        d.close()


def _root_has_property(display: str, atom_name: str) -> bool:
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        prop = d.screen().root.get_full_property(d.intern_atom(atom_name), X.AnyPropertyType)
        return prop is not None
    finally:
        d.close()


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """An Xvfb on a free display number; returns the process and its DISPLAY string."""
    xvfb = _need("Xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    # Xvfb writes the display number it picked once it accepts connections.
    with os.fdopen(read_fd, "rb") as fh:
        number = fh.readline().strip().decode()
    if not number:
        stop_process(proc)
        pytest.fail(f"Xvfb did not start (exit code {proc.poll()})")
    return proc, f":{number}"


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    proc, display = start_xvfb()
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        stop_process(proc)
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous


@pytest.fixture(scope="session")
def window_manager(x_display: str) -> Iterator[str]:
    """openbox + xcompmgr; returns the display."""
    openbox = subprocess.Popen(
        [_need("openbox"), "--sm-disable"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    compositor = subprocess.Popen([_need("xcompmgr")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _root_has_property(x_display, "_NET_SUPPORTING_WM_CHECK"), 10, "openbox")
        wait_until(lambda: _selection_owned(x_display, "_NET_WM_CM_S0"), 10, "xcompmgr")
        yield x_display
    finally:
        stop_process(compositor)
        stop_process(openbox)


@pytest.fixture(scope="session")
def dbus_session() -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="subtone-dbus-")
    address = f"unix:path={tmp}/bus"
    proc = subprocess.Popen(
        [_need("dbus-daemon"), "--session", "--nofork", f"--address={address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Stopped at interpreter exit, not at session teardown: pystray's GTK backend says goodbye
    # over the bus from its own atexit hook, registered later and therefore run earlier.
    atexit.register(shutil.rmtree, tmp, True)
    atexit.register(stop_process, proc)
    wait_until(lambda: Path(f"{tmp}/bus").exists(), 10, "dbus-daemon")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    yield address


@pytest.fixture(scope="session")
def tray_host(window_manager: str) -> Iterator[str]:
    """trayer at the top edge of the screen; returns the display."""
    proc = subprocess.Popen(
        [_need("trayer"), "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
         "--SetDockType", "true", "--transparent", "false", "--tint", "0x303030"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _selection_owned(window_manager, "_NET_SYSTEM_TRAY_S0"), 10, "trayer")
        yield window_manager
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def qapp(x_display: str):
    """The QApplication (one per process) on the test display."""
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["subtone-tests"])
    yield app


def process_events_for(seconds: float) -> None:
    """Run the Qt event loop (and GTK's, which Qt's glib dispatcher drives) for a while."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(max(0, round(seconds * 1000)), loop.quit)
    loop.exec()


def process_events_until(predicate: Callable[[], bool], timeout: float, what: str, poll_ms: int = 10) -> None:
    """Run the Qt event loop until `predicate()` holds; TimeoutError naming `what` otherwise."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    met = False

    def check() -> None:
        nonlocal met
        if predicate():
            met = True
            loop.quit()
        elif time.monotonic() > deadline:
            loop.quit()
        else:
            # Re-armed after each check, not a repeating timer: a slow predicate must leave idle
            # time between checks, or GTK's redraws (glib idle priority) never run.
            QTimer.singleShot(poll_ms, check)

    QTimer.singleShot(poll_ms, check)
    loop.exec()
    if not met:
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
