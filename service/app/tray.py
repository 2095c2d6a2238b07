"""The tray icon: state at a glance, and the daemon's menu.

    tray = Tray(on_listening=ctl.set_listening, on_mode=ctl.set_mode, on_device=ctl.set_device,
                on_open_settings=ctl.open_settings, on_open_history=ctl.open_history,
                on_quit=ctl.quit, listening=True, mode="push-to-talk")
    tray.run_detached()                 # from the Qt main thread, after QApplication exists
    tray.set_devices(["USB mic", "Built-in"], current="")   # "" = the system default
    tray.set_state(StateChanged(ServiceState.ERROR, "microphone 'USB mic' disappeared"))
    tray.stop()

Menu: Listening (check), Mode ▸ Push-to-talk / Voice-activated / Both (radio), Source ▸
Microphone / System audio / Both (radio), Microphone ▸ System default / one entry per device
(radio; greyed while only system audio is captioned), Recent captions, Open settings file,
Reload settings, Open caption history, in error a disabled line with the error, Quit. Callbacks
get the new value (on_listening: bool, on_mode: a [trigger] mode, on_source: an [audio] source,
on_device: a device name or "" for the default); on_recent, on_reload take none.

Threads: with the GTK backend (chosen when PyGObject is installed and PYSTRAY_BACKEND is not
set) `run_detached()` hooks into the GLib main loop that Qt's event loop already runs, so menu
callbacks run on the Qt main thread. Other pystray backends call them on their own thread.
Callbacks should therefore only post to the controller. `set_state` and `set_devices` are
safe from any thread with the GTK backend (pystray defers the work to the main loop); calling
them on the main thread (CaptionBridge.attach_state) is safe everywhere.

No tray host (a desktop without a system tray): a warning in the log, nothing else; the
daemon keeps running and quits on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Sequence

from PIL import Image, ImageDraw

from subtone.service.events import ServiceState, StateChanged

log = logging.getLogger(__name__)

MODES: dict[str, str] = {"push-to-talk": "Push-to-talk", "voice": "Voice-activated", "both": "Both"}
"""[trigger] mode → menu text."""
SOURCES: dict[str, str] = {"microphone": "Microphone", "system": "System audio", "both": "Both"}
"""[audio] source → menu text."""
ICON_SIZE = 64


# ----- icons: each state has its own shape, not only its own color -----

_STATE_COLORS = {
    ServiceState.IDLE: (110, 110, 110),
    ServiceState.LISTENING: (0, 114, 178),  # Okabe–Ito blue
    ServiceState.HEARING: (0, 158, 115),  # bluish green
    ServiceState.RECOGNISING: (230, 159, 0),  # orange
    ServiceState.ERROR: (213, 94, 0),  # vermillion
}


def _microphone(draw: ImageDraw.ImageDraw, cx: float, color: tuple[int, int, int, int]) -> None:
    s = ICON_SIZE / 64
    draw.rounded_rectangle((cx - 7 * s, 14 * s, cx + 7 * s, 38 * s), radius=7 * s, fill=color)
    draw.arc((cx - 12 * s, 22 * s, cx + 12 * s, 44 * s), start=0, end=180, fill=color, width=round(3 * s))
    draw.line((cx, 44 * s, cx, 51 * s), fill=color, width=round(3 * s))
    draw.line((cx - 7 * s, 51 * s, cx + 7 * s, 51 * s), fill=color, width=round(3 * s))


def draw_state_icon(state: ServiceState) -> Image.Image:
    """A 64×64 RGBA icon: idle = mic struck through, listening = mic, hearing = mic with sound
    waves, recognising = three dots, error = warning triangle with "!"."""
    s = ICON_SIZE / 64
    image = Image.new("RGBA", (ICON_SIZE, ICON_SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    color = _STATE_COLORS[state]
    white = (255, 255, 255, 255)
    if state is ServiceState.ERROR:
        draw.polygon([(32 * s, 3 * s), (62 * s, 59 * s), (2 * s, 59 * s)], fill=color)
        draw.rounded_rectangle((28.5 * s, 20 * s, 35.5 * s, 43 * s), radius=3 * s, fill=white)
        draw.ellipse((28.5 * s, 47 * s, 35.5 * s, 54 * s), fill=white)
        return image
    draw.ellipse((1 * s, 1 * s, 63 * s, 63 * s), fill=color)
    if state is ServiceState.RECOGNISING:
        for cx in (18, 32, 46):
            draw.ellipse(((cx - 5) * s, 27 * s, (cx + 5) * s, 37 * s), fill=white)
    elif state is ServiceState.HEARING:
        _microphone(draw, 26 * s, white)
        for r in (10, 17):
            draw.arc(((36 - r) * s, (32 - r) * s, (36 + r) * s, (32 + r) * s), start=-50, end=50, fill=white,
                     width=round(3 * s))
    else:
        _microphone(draw, 32 * s, white)
        if state is ServiceState.IDLE:
            draw.line((14 * s, 50 * s, 50 * s, 14 * s), fill=(40, 40, 40, 255), width=round(8 * s))
            draw.line((14 * s, 50 * s, 50 * s, 14 * s), fill=white, width=round(4 * s))
    return image


def tray_host_present() -> bool | None:
    """Whether an X11 system tray (freedesktop XEmbed) is running; None when this cannot be told."""
    if not os.environ.get("DISPLAY"):
        return None
    try:
        from Xlib import X
        from Xlib import display as xdisplay

        d = xdisplay.Display()
        try:
            atom = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
            return d.get_selection_owner(atom) not in (X.NONE, 0)
        finally:
            d.close()
    except Exception:
        return None


def _session_bus_reachable() -> bool:
    try:
        from gi.repository import Gio

        Gio.bus_get_sync(Gio.BusType.SESSION, None)
        return True
    except Exception as exc:
        log.warning("no D-Bus session bus (%s): the tray icon will have no menu", _first_line(exc))
        return False


def _choose_backend() -> None:
    """Prefer pystray's GTK backend (real menus on X11 trays) unless the user chose one.

    pystray's GTK backend needs a session bus (it opens one for notifications and fails
    without it); with none, its plain X11 backend still shows the icon.
    """
    if "PYSTRAY_BACKEND" in os.environ:
        return
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        from gi.repository import Gtk  # noqa: F401
    except (ImportError, ValueError):
        return
    os.environ["PYSTRAY_BACKEND"] = "gtk" if _session_bus_reachable() else "xorg"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Tray:
    def __init__(
        self,
        *,
        on_listening: Callable[[bool], None],
        on_mode: Callable[[str], None],
        on_device: Callable[[str], None],
        on_open_settings: Callable[[], None],
        on_open_history: Callable[[], None],
        on_quit: Callable[[], None],
        listening: bool = True,
        mode: str = "push-to-talk",
        on_source: Callable[[str], None] = lambda kind: None,
        on_recent: Callable[[], None] = lambda: None,
        on_reload: Callable[[], None] = lambda: None,
        source: str = "microphone",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"tray mode {mode!r}: expected one of {', '.join(MODES)}")
        if source not in SOURCES:
            raise ValueError(f"tray source {source!r}: expected one of {', '.join(SOURCES)}")
        self._on_source = on_source
        self._on_recent = on_recent
        self._on_reload = on_reload
        self._source = source
        self._on_listening = on_listening
        self._on_mode = on_mode
        self._on_device = on_device
        self._on_open_settings = on_open_settings
        self._on_open_history = on_open_history
        self._on_quit = on_quit
        self._listening = listening
        self._mode = mode
        self._devices: tuple[str, ...] = ()
        self._device = ""
        self._state = StateChanged(ServiceState.LISTENING if listening else ServiceState.IDLE)
        self._lock = threading.Lock()
        self._icon: Any = None

    # ----- lifecycle -----

    def run_detached(self) -> None:
        """Show the icon; returns at once. Call from the Qt main thread."""
        _choose_backend()
        host = tray_host_present()
        if host is False and os.environ.get("PYSTRAY_BACKEND") != "gtk":
            # pystray's plain X11 backend blocks and logs tracebacks without a tray; GTK's docks later.
            log.warning("no system tray found: no tray icon; subtone keeps running (quit with Ctrl+C or SIGTERM)")
            return
        import pystray

        icon = pystray.Icon("subtone", draw_state_icon(self._state.state), self.title, self._build_menu())
        failed = threading.Event()

        def setup(started: Any) -> None:
            if not failed.is_set():
                started.visible = True

        try:
            icon.run_detached(setup)
        except Exception as exc:
            failed.set()
            log.warning("tray icon unavailable (%s); subtone keeps running (quit with Ctrl+C or SIGTERM)",
                        _first_line(exc))
            # pystray's setup thread waits for a "ready" that a failed start never sends; release it
            # (it then does nothing: `failed` is set). Private, so guarded.
            queue = getattr(icon, "_Icon__queue", None)
            if queue is not None:
                queue.put(False)
            return
        self._icon = icon
        self._set_title()
        log.info("tray icon started (pystray backend: %s)", type(self._icon).__module__.rsplit(".", 1)[-1])
        if host is False:
            log.warning("no system tray found: the tray icon shows once one starts; subtone keeps running "
                        "(quit with Ctrl+C or SIGTERM)")

    def stop(self) -> None:
        icon, self._icon = self._icon, None
        if icon is not None:
            # Detached, pystray's stop() leaves the icon docked: hide it first (done by the main loop).
            try:
                icon.visible = False
            except Exception:
                pass
            icon.stop()
            # pystray's GTK backend hides its last notification again from an atexit hook, which
            # prints a traceback when no notification service (or no bus) is left by then.
            notifier = getattr(icon, "_notifier", None)
            if notifier is not None:
                try:
                    notifier.hide()
                except Exception:
                    pass
                notifier.hide = lambda: None

    # ----- state from the service -----

    @property
    def state(self) -> StateChanged:
        return self._state

    @property
    def title(self) -> str:
        state = self._state
        if state.state is ServiceState.ERROR:
            return f"subtone: error: {state.detail}" if state.detail else "subtone: error"
        if not self._listening:
            return "subtone: not listening"
        return f"subtone: {state.state.value} ({MODES[self._mode].lower()})"

    def set_state(self, event: StateChanged) -> None:
        changed_icon = event.state is not self._state.state
        self._state = event
        if self._icon is None:
            return
        if changed_icon:
            self._icon.icon = draw_state_icon(event.state)
        self._set_title()
        self._icon.update_menu()

    def set_devices(self, names: Sequence[str], current: str) -> None:
        """The microphones to offer; `current` is one of them or "" for the system default."""
        with self._lock:
            self._devices = tuple(names)
            self._device = current
        if self._icon is not None:
            self._icon.update_menu()

    def set_listening(self, on: bool) -> None:
        """Reflect a change made elsewhere (config, hotkey) without calling back."""
        self._listening = on
        self._refresh()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"tray mode {mode!r}: expected one of {', '.join(MODES)}")
        self._mode = mode
        self._refresh()

    def set_source(self, source: str) -> None:
        if source not in SOURCES:
            raise ValueError(f"tray source {source!r}: expected one of {', '.join(SOURCES)}")
        self._source = source
        self._refresh()

    def _set_title(self) -> None:
        """pystray's title; with the GTK backend also the hover tooltip, which pystray leaves unset."""
        icon = self._icon
        if icon is None:
            return
        text = self.title
        icon.title = text
        status_icon = getattr(icon, "_status_icon", None)  # pystray._gtk's Gtk.StatusIcon
        if status_icon is not None:
            from gi.repository import GLib

            GLib.idle_add(lambda: status_icon.set_tooltip_text(text) and False)

    def _refresh(self) -> None:
        if self._icon is not None:
            self._set_title()
            self._icon.update_menu()

    def menu_lines(self) -> list[str]:
        """The visible top-level menu entries as text, disabled ones in brackets (logs, tests)."""
        if self._icon is None:
            return []
        return [item.text if item.enabled else f"[{item.text}]" for item in self._icon.menu]

    @property
    def icon_image(self) -> Image.Image | None:
        return None if self._icon is None else self._icon.icon

    # ----- menu -----

    def _build_menu(self) -> Any:
        from pystray import Menu, MenuItem

        def mode_item(mode: str) -> Any:
            return MenuItem(MODES[mode], lambda: self._choose_mode(mode), checked=lambda _i: self._mode == mode,
                            radio=True)

        def device_items() -> Any:
            with self._lock:
                devices = self._devices
            items = [MenuItem("System default", lambda: self._choose_device(""),
                              checked=lambda _i: self._device == "", radio=True)]
            for name in devices:
                items.append(device_item(name))
            return items

        def device_item(name: str) -> Any:
            return MenuItem(name, lambda: self._choose_device(name), checked=lambda _i: self._device == name,
                            radio=True)

        def source_item(kind: str) -> Any:
            return MenuItem(SOURCES[kind], lambda: self._choose_source(kind), checked=lambda _i: self._source == kind,
                            radio=True)

        return Menu(
            MenuItem("Listening", self._toggle_listening, checked=lambda _i: self._listening),
            MenuItem("Mode", Menu(*(mode_item(m) for m in MODES))),
            MenuItem("Source", Menu(*(source_item(k) for k in SOURCES))),
            MenuItem("Microphone", Menu(device_items), enabled=lambda _i: self._source != "system"),
            Menu.SEPARATOR,
            MenuItem("Recent captions", lambda: self._on_recent()),
            MenuItem("Open settings file", lambda: self._on_open_settings()),
            MenuItem("Reload settings", lambda: self._on_reload()),
            MenuItem("Open caption history", lambda: self._on_open_history()),
            MenuItem(lambda _i: f"Error: {self._state.detail or 'see the log'}", None, enabled=False,
                     visible=lambda _i: self._state.state is ServiceState.ERROR),
            Menu.SEPARATOR,
            MenuItem("Quit", lambda: self._on_quit()),
        )

    def _toggle_listening(self) -> None:
        self._listening = not self._listening
        if self._icon is not None:
            self._set_title()
        self._on_listening(self._listening)

    def _choose_mode(self, mode: str) -> None:
        self._mode = mode
        if self._icon is not None:
            self._set_title()
        self._on_mode(mode)

    def _choose_source(self, kind: str) -> None:
        self._source = kind
        self._refresh()
        self._on_source(kind)

    def _choose_device(self, name: str) -> None:
        with self._lock:
            self._device = name
        self._on_device(name)
