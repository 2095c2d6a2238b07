"""The global push-to-talk hotkey, driven by real key events (xdotool → Xvfb → pynput over RECORD)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from subtone.service.errors import SubtoneError
from subtone.service.trigger.hotkey import HotkeyListener, NAMED_KEYS, parse_combo


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def press(self) -> None:
        with self.lock:
            self.events.append(("press", time.monotonic()))

    def release(self) -> None:
        with self.lock:
            self.events.append(("release", time.monotonic()))

    def kinds(self) -> list[str]:
        with self.lock:
            return [k for k, _ in self.events]


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True)


def wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_parse_combo_accepts_pynput_notation():
    assert parse_combo("<ctrl>+<alt>+space") == ("ctrl", "alt", "space")
    assert parse_combo("<ctrl>+<shift>+H") == ("ctrl", "shift", "h")
    assert parse_combo(" <f9> ") == ("f9",)


@pytest.mark.parametrize(
    "combo, words",
    [
        ("", "empty"),
        ("<ctrl>++space", "empty key"),
        ("<ctrl>+<spacebar>", "unknown key 'spacebar'"),
        ("<ctrl>+<a>", "without brackets"),
        ("<ctrl>+<ctrl>", "appears twice"),
    ],
)
def test_bad_combo_is_a_clear_error(combo, words):
    with pytest.raises(SubtoneError) as err:
        HotkeyListener(combo, lambda: None, lambda: None)
    assert words in str(err.value) and repr(combo) in str(err.value)


@pytest.mark.desktop
def test_named_keys_exist_in_pynput(x_display):
    from pynput.keyboard import Key

    assert NAMED_KEYS <= set(Key.__members__)


@pytest.fixture()
def listener(x_display):
    rec = Recorder()
    hotkey = HotkeyListener("<ctrl>+<alt>+space", rec.press, rec.release)
    hotkey.start()
    yield hotkey, rec
    t0 = time.monotonic()
    hotkey.stop()
    assert time.monotonic() - t0 < 0.5, "the listener thread did not stop promptly"
    assert not any(t.name.startswith("hotkey") or "Listener" in type(t).__name__ for t in threading.enumerate())


@pytest.mark.desktop
def test_hold_gives_one_press_and_one_release_despite_auto_repeat(listener):
    hotkey, rec = listener
    xdotool("keydown", "ctrl+alt+space")
    assert wait_for(lambda: rec.kinds() == ["press"])
    # Auto-repeat as X sends it while a key is held: more presses of keys already down.
    for _ in range(8):
        xdotool("keydown", "space")
    xdotool("keydown", "ctrl")
    time.sleep(0.3)
    assert rec.kinds() == ["press"]
    xdotool("keyup", "space")
    assert wait_for(lambda: rec.kinds() == ["press", "release"])
    xdotool("keyup", "alt", "keyup", "ctrl")
    time.sleep(0.2)
    assert rec.kinds() == ["press", "release"]

    # A second hold works the same way; release by letting go of a modifier first.
    xdotool("keydown", "ctrl+alt+space")
    assert wait_for(lambda: rec.kinds() == ["press", "release", "press"])
    xdotool("keyup", "ctrl")
    assert wait_for(lambda: rec.kinds() == ["press", "release", "press", "release"])
    xdotool("keyup", "alt", "keyup", "space")


@pytest.mark.desktop
def test_other_keys_and_partial_combos_are_ignored(listener):
    hotkey, rec = listener
    xdotool("key", "space", "key", "a", "key", "ctrl+space", "key", "alt+space", "key", "ctrl+alt+a")
    xdotool("key", "ctrl+alt+shift+space")  # a different combo: one key too many
    time.sleep(0.4)
    assert rec.kinds() == []
    xdotool("key", "ctrl+alt+space")  # the real one still works after all that
    assert wait_for(lambda: rec.kinds() == ["press", "release"])


@pytest.mark.desktop
def test_a_failing_callback_does_not_kill_the_listener(x_display):
    rec = Recorder()

    def boom() -> None:
        raise RuntimeError("callback bug")

    hotkey = HotkeyListener("<ctrl>+<shift>+h", boom, rec.release)
    hotkey.start()
    try:
        xdotool("key", "ctrl+shift+h")
        assert wait_for(lambda: rec.kinds() == ["release"])
        xdotool("key", "ctrl+shift+h")
        assert wait_for(lambda: rec.kinds() == ["release", "release"])
    finally:
        hotkey.stop()
