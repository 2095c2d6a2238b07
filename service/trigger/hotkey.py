"""The push-to-talk global hotkey: press and release of a key combination, from any app.

    listener = HotkeyListener("<ctrl>+<alt>+space", on_press=gate.open, on_release=gate.close)
    listener.start()   # raises SubtoneError if the combo is bad or no global hotkey is possible
    ...
    listener.stop()

Combo notation (like pynput's GlobalHotKeys): keys joined by "+"; named keys in angle
brackets (`<ctrl>`, `<alt>`, `<shift>`, `<cmd>`, `<space>`, `<f9>` …; the brackets may be left
off for a name longer than one letter, as in "<ctrl>+<alt>+space"); single characters as they
are ("<ctrl>+<shift>+h"). Left and right modifiers count as the same key.

Hold semantics: `on_press` runs when the held keys become exactly the combo; `on_release`
runs when any key of the combo goes up after that. Auto-repeat (presses of a key already
held) is ignored, so holding the keys gives one press and one release. Both callbacks run on
pynput's listener thread: keep them short and thread-safe (post to a queue). The "toggle"
style is built on top of these two events by the push-to-talk gate.

Where it cannot work: pynput reads keys through X11's RECORD extension (or Win32/macOS
hooks). Under Wayland, an X11 client only sees keys while an XWayland window has focus,
so a global hotkey is not possible without a desktop portal; users there use voice mode,
or the desktop's own shortcut settings (see README, "Live captions").
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable

from subtone.service.errors import SubtoneError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 3.0

# pynput.keyboard.Key member names (pynput 1.8), so a combo is checked before pynput is imported
# (importing pynput needs a display).
NAMED_KEYS = frozenset(
    "alt alt_l alt_r alt_gr backspace caps_lock cmd cmd_l cmd_r ctrl ctrl_l ctrl_r delete down end "
    "enter esc home left page_down page_up right shift shift_l shift_r space tab up media_play_pause "
    "media_volume_mute media_volume_down media_volume_up media_previous media_next insert menu "
    "num_lock pause print_screen scroll_lock".split()
    + [f"f{i}" for i in range(1, 21)]
)


def parse_combo(combo: str) -> tuple[str, ...]:
    """Check a combo and return its keys: Key names ("ctrl", "space") or single characters ("h")."""

    def bad(why: str) -> SubtoneError:
        return SubtoneError(
            f"hotkey {combo!r}: {why} (expected keys joined by '+', e.g. '<ctrl>+<alt>+space' or '<ctrl>+<shift>+h')"
        )

    if not combo.strip():
        raise bad("empty")
    keys: list[str] = []
    for raw in combo.strip().lower().split("+"):
        token = raw.strip()
        if token.startswith("<") and token.endswith(">"):
            token = token[1:-1].strip()
            if len(token) == 1:
                raise bad(f"'<{token}>': single characters go without brackets")
        if not token:
            raise bad("an empty key between '+' signs")
        if len(token) > 1 and token not in NAMED_KEYS:
            raise bad(f"unknown key '{token}'")
        if token in keys:
            raise bad(f"'{token}' appears twice")
        keys.append(token)
    return tuple(keys)


class HotkeyListener:
    """Calls on_press / on_release as the combo goes down and up, anywhere on the desktop."""

    def __init__(self, combo: str, on_press: Callable[[], None], on_release: Callable[[], None]) -> None:
        self.combo = combo
        self._keys = parse_combo(combo)
        self._on_press = on_press
        self._on_release = on_release
        self._listener: Any = None
        self._target: frozenset[Any] = frozenset()
        self._held: set[Any] = set()
        self._active = False

    def start(self) -> None:
        if self._listener is not None:
            return
        if os.environ.get("XDG_SESSION_TYPE") == "wayland":
            log.warning(
                "Wayland session: the hotkey %s is only seen while an X11 (XWayland) window has focus; "
                "use voice mode or a desktop shortcut instead",
                self.combo,
            )
        try:
            from pynput import keyboard
        except Exception as exc:  # pynput raises at import time when no backend works (no DISPLAY)
            raise SubtoneError(
                f"hotkey {self.combo}: no global hotkey on this desktop ({_first_line(exc)}); "
                "use voice mode (trigger.mode = \"voice\")"
            ) from None

        listener = keyboard.Listener(on_press=self._press, on_release=self._release)
        self._target = frozenset(listener.canonical(self._resolve(keyboard, k)) for k in self._keys)
        listener.start()
        ready = threading.Event()
        # pynput's wait() has no timeout and never returns if its thread dies first (no RECORD).
        threading.Thread(target=lambda: (listener.wait(), ready.set()), daemon=True, name="hotkey-wait").start()
        if not ready.wait(START_TIMEOUT_S) or not listener.is_alive():
            listener.stop()
            raise SubtoneError(
                f"hotkey {self.combo}: the key listener did not start (X11 RECORD extension missing?); "
                "use voice mode (trigger.mode = \"voice\")"
            )
        self._listener = listener
        log.info("push-to-talk hotkey %s ready", self.combo)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            _end_x11_record(listener)
            listener.join(2.0)
            if listener.is_alive():
                log.warning("hotkey listener thread did not stop within 2 s")
        self._held.clear()
        self._active = False

    @staticmethod
    def _resolve(keyboard: Any, name: str) -> Any:
        if len(name) == 1:
            return keyboard.KeyCode.from_char(name)
        return getattr(keyboard.Key, name)

    # pynput's thread from here on.

    def _press(self, key: Any) -> None:
        listener = self._listener
        if listener is None or key is None:
            return
        key = listener.canonical(key)
        if key in self._held:
            return  # auto-repeat
        self._held.add(key)
        if not self._active and self._held == self._target:
            self._active = True
            self._call(self._on_press, "on_press")

    def _release(self, key: Any) -> None:
        listener = self._listener
        if listener is None or key is None:
            return
        key = listener.canonical(key)
        self._held.discard(key)
        if self._active and key in self._target:
            self._active = False
            self._call(self._on_release, "on_release")

    def _call(self, callback: Callable[[], None], name: str) -> None:
        # An exception escaping a pynput callback stops the listener: log it and keep listening.
        try:
            callback()
        except Exception:
            log.exception("hotkey %s callback failed", name)


def _end_x11_record(listener: Any) -> None:
    """Wake pynput's X11 thread now instead of at the next key event.

    pynput queues RECORD's "disable context" on the connection its thread is blocked reading,
    so it is only sent once some input arrives. The RECORD spec expects that request on a
    different connection: send it on one of our own.
    """
    context = getattr(listener, "_context", None)
    if context is None:
        return
    try:
        from Xlib import display as xdisplay

        conn = xdisplay.Display()
        try:
            conn.record_disable_context(context)
            conn.sync()
        finally:
            conn.close()
    except Exception as exc:  # not the X11 backend, or the context is already gone
        log.debug("could not disable the X11 RECORD context: %s", exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
