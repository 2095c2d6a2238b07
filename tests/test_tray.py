"""The tray icon on a real X11 tray (trayer) through pystray's GTK backend, driven with xdotool."""

from __future__ import annotations

import os
import subprocess

import pytest
from x11_env import process_events_for, process_events_until

from subtone.service.events import ServiceState, StateChanged
from subtone.service.app.tray import Tray, draw_state_icon, tray_host_present

pytestmark = pytest.mark.desktop


def test_state_icons_differ_in_shape_not_only_color():
    from PIL import ImageChops

    masks = {s: draw_state_icon(s).getchannel("A").point(lambda a: 255 if a > 127 else 0) for s in ServiceState}
    # Shapes: compare where the icon is white (the symbol) as well as its outline.
    symbols = {
        s: draw_state_icon(s).convert("L").point(lambda v: 255 if v > 240 else 0) for s in ServiceState
    }
    states = list(ServiceState)
    for i, a in enumerate(states):
        for b in states[i + 1 :]:
            differ = ImageChops.difference(symbols[a], symbols[b]).getbbox() or ImageChops.difference(
                masks[a], masks[b]
            ).getbbox()
            assert differ, f"{a} and {b} have the same shape"


class Calls:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def tray(self, **kw) -> Tray:
        return Tray(
            on_listening=lambda on: self.log.append(("listening", on)),
            on_mode=lambda m: self.log.append(("mode", m)),
            on_device=lambda d: self.log.append(("device", d)),
            on_open_settings=lambda: self.log.append(("settings", None)),
            on_open_history=lambda: self.log.append(("history", None)),
            on_quit=lambda: self.log.append(("quit", None)),
            on_source=lambda k: self.log.append(("source", k)),
            on_recent=lambda: self.log.append(("recent", None)),
            on_reload=lambda: self.log.append(("reload", None)),
            **kw,
        )


def _trayer_geometry() -> tuple[int, int, int, int]:
    """The visible trayer panel (it sizes itself to the icons it holds: ours is the only one)."""
    ids = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--class", "trayer"], capture_output=True, text=True
    ).stdout.split()
    assert ids, "trayer window not found"
    boxes = []
    for wid in ids:
        out = subprocess.run(
            ["xdotool", "getwindowgeometry", "--shell", wid], capture_output=True, text=True, check=True
        ).stdout
        g = dict(line.split("=") for line in out.split())
        boxes.append((int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])))
    return max(boxes, key=lambda b: b[2] * b[3])


def _grab(x: int, y: int, w: int, h: int):
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.primaryScreen().grabWindow(0, x, y, w, h).toImage()


@pytest.fixture()
def tray(tray_host, dbus_session, qapp):
    os.environ.setdefault("NO_AT_BRIDGE", "1")
    calls = Calls()
    t = calls.tray(listening=True, mode="push-to-talk")
    t.set_devices(["Test mic A", "Test mic B"], "")
    t.run_detached()
    yield t, calls
    docked_width = _trayer_geometry()[2]
    t.stop()
    # The icon leaves the tray (other tests, and the live e2e tests, use the same trayer).
    process_events_until(lambda: _trayer_geometry()[2] < docked_width, 5, "the icon to leave the tray")


def _menu_choose(keys: list[str], calls: Calls, expect_len: int) -> None:
    x, y, w, h = _trayer_geometry()
    subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3"], check=True)
    process_events_for(0.4)  # the menu maps
    if os.environ.get("SUBTONE_SCREENSHOT_DIR"):
        _grab(x - 400, y, w + 400, 400).save(os.path.join(os.environ["SUBTONE_SCREENSHOT_DIR"], f"tray_menu_{len(calls.log)}.png"))
    proc = subprocess.Popen(["xdotool", "key", "--delay", "60", *keys])
    process_events_until(lambda: proc.poll() is not None and len(calls.log) >= expect_len, 5, f"menu keys {keys}")


def test_icon_docks_menu_runs_callbacks_and_state_changes_icon(tray):
    t, calls = tray
    assert type(t._icon).__module__ == "pystray._gtk", "not pystray's GTK backend"
    assert tray_host_present() is True

    # Docked: the icon is drawn inside trayer (its area is not just trayer's flat tint).
    def docked() -> bool:
        x, y, w, h = _trayer_geometry()
        return w >= 16 and len({_grab(x, y, w, h).pixel(px, h // 2) for px in range(w)}) > 3

    process_events_until(docked, 10, "the icon to dock in trayer")

    # Right-click opens the real menu; the keyboard picks items.
    # Items: Listening, Mode ▸, Source ▸, Microphone ▸, Recent captions, Open settings file, Reload settings,
    # Open caption history, Quit (separators are skipped by the keys).
    _menu_choose(["Down", "Return"], calls, 1)  # Listening (checked) → off
    assert calls.log == [("listening", False)]
    _menu_choose(["Down"] * 6 + ["Return"], calls, 2)  # Open settings file
    assert calls.log[-1] == ("settings", None)
    _menu_choose(["Down", "Down", "Right", "Down", "Return"], calls, 3)  # Mode ▸ Voice-activated
    assert calls.log[-1] == ("mode", "voice")
    _menu_choose(["Down"] * 4 + ["Right", "Down", "Down", "Return"], calls, 4)  # Microphone ▸ Test mic B
    assert calls.log[-1] == ("device", "Test mic B")
    assert "voice-activated" in t.title or "not listening" in t.title
    _menu_choose(["Down"] * 3 + ["Right", "Down", "Return"], calls, 5)  # Source ▸ System audio
    assert calls.log[-1] == ("source", "system")
    # System audio only: the Microphone menu is greyed out (in the real GTK menu too).
    assert "[Microphone]" in t.menu_lines()
    process_events_until(lambda: {c.get_label(): c.get_sensitive() for c in t._icon._menu_handle.get_children()}
                         .get("Microphone") is False, 3, "the Microphone menu to grey out")
    _menu_choose(["Down"] * 3 + ["Right", "Down", "Down", "Return"], calls, 6)  # Source ▸ Both
    assert calls.log[-1] == ("source", "both") and "Microphone" in t.menu_lines()
    _menu_choose(["Down"] * 5 + ["Return"], calls, 7)  # Recent captions
    assert calls.log[-1] == ("recent", None)
    _menu_choose(["Down"] * 7 + ["Return"], calls, 8)  # Reload settings
    assert calls.log[-1] == ("reload", None)

    # State: icon image, on-screen pixels and tooltip change; an error shows its line in the menu.
    x, y, w, h = _trayer_geometry()
    before_img = t.icon_image.tobytes()
    before_px = _grab(x, y, w, h)
    t.set_state(StateChanged(ServiceState.ERROR, "microphone 'Test mic B' disappeared"))
    assert t.icon_image.tobytes() != before_img
    process_events_until(lambda: _grab(x, y, w, h) != before_px, 5, "the tray icon to redraw")
    assert t.title == "subtone: error: microphone 'Test mic B' disappeared"
    process_events_until(
        lambda: t._icon._status_icon.get_tooltip_text() == t.title, 3, "the GTK tooltip to show the error"
    )
    assert "[Error: microphone 'Test mic B' disappeared]" in t.menu_lines()
    # …and in the real GTK menu (pystray's private handle), as an insensitive item.
    process_events_for(0.3)
    gtk_items = {c.get_label(): c.get_sensitive() for c in t._icon._menu_handle.get_children()}
    assert gtk_items["Error: microphone 'Test mic B' disappeared"] is False
    assert gtk_items["Quit"] is True
    t.set_state(StateChanged(ServiceState.HEARING))
    assert not any(line.startswith("[Error") for line in t.menu_lines())

    _menu_choose(["Up", "Return"], calls, 9)  # last item: Quit
    assert calls.log[-1] == ("quit", None)


NO_TRAY_CHILD = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from PySide6.QtWidgets import QApplication
app = QApplication([])
from subtone.service.events import ServiceState, StateChanged
from subtone.service.app.tray import Tray
t = Tray(on_listening=print, on_mode=print, on_device=print, on_open_settings=print,
         on_open_history=print, on_quit=print)
t.run_detached()
end = time.monotonic() + 0.5
while time.monotonic() < end:
    app.processEvents()
t.set_state(StateChanged(ServiceState.ERROR, "no microphone"))
app.processEvents()
t.stop()
print("still alive")
"""


@pytest.mark.parametrize("backend", ["gtk", ""], ids=["forced-gtk", "auto"])
def test_no_tray_host_and_no_session_bus_is_a_log_line_not_a_crash(backend):
    """A bare X display: no tray host, no session bus, no window manager."""
    import sys

    from x11_env import stop_process, start_xvfb

    proc, display = start_xvfb()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYSTRAY_BACKEND")}
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", NO_AT_BRIDGE="1")
        if backend:
            env["PYSTRAY_BACKEND"] = backend
        child = subprocess.run([sys.executable, "-c", NO_TRAY_CHILD], env=env, capture_output=True, text=True,
                               timeout=30)
    finally:
        stop_process(proc)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "still alive" in child.stdout
    assert "no system tray found" in child.stderr or "tray icon unavailable" in child.stderr
    assert "Traceback" not in child.stderr, child.stderr[-2000:]
