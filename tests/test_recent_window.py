"""The "Recent captions" window on a real X11 desktop (Xvfb + openbox + xcompmgr): an ordinary
window that takes the focus, lists the captions fed to its store, follows new ones, closes with Esc;
and, end to end, the [hotkey] recent_combo of a running `subtone run` opens and closes it."""

from __future__ import annotations

import subprocess
import time

import pytest
from x11_env import process_events_for, process_events_until

from conftest import JFK
from live_daemon import LiveDaemon, env_for
from subtone.service.app.recent import RecentCaptions, RecentEntry, entry_line
from test_live_service import config

pytestmark = pytest.mark.desktop

TITLE = "subtone: recent captions"


def windows_named(name: str, display: str | None = None) -> list[str]:
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], capture_output=True, text=True,
                         env=env_for(display=display) if display else None, timeout=10)
    return out.stdout.split()


def active_window() -> str:
    return subprocess.run(["xdotool", "getactivewindow"], capture_output=True, text=True, timeout=10).stdout.strip()


@pytest.fixture()
def window(window_manager, qapp):
    from subtone.overlay.recent_window import RecentCaptionsWindow

    store = RecentCaptions(max_age_s=600)
    widget = RecentCaptionsWindow(store, entry_line, "DejaVu Sans")
    yield widget, store
    widget.close()
    widget.deleteLater()
    process_events_for(0.05)


def test_window_lists_captions_follows_new_ones_and_closes_with_escape(window):
    widget, store = window
    now = time.time()
    for i in range(40):  # more than fit: the window must scroll
        store.add_entry(RecentEntry(now - 300 + i, f"caption number {i}", "happy" if i % 2 else None,
                                    "computer" if i % 3 == 0 else "you"))
    widget.open()
    process_events_until(lambda: windows_named(TITLE), 10, "the recent-captions window to map")
    wid = windows_named(TITLE)[0]
    assert int(wid) == int(widget.winId())
    # An ordinary window: the window manager gives it the focus (the caption overlay never takes it).
    process_events_until(lambda: active_window() == wid, 10, "the window to take the focus")

    lines = widget.text().splitlines()
    assert len(lines) == 40 and lines[-1].endswith("computer:  happy  caption number 39")
    assert lines[0].endswith("computer:  caption number 0")
    bar = widget._text.verticalScrollBar()
    assert bar.maximum() > 0 and widget.at_end()  # it scrolls, and shows the newest at the bottom

    store.add_entry(RecentEntry(time.time(), "a new one while open", "sad", "computer"))
    process_events_until(lambda: widget.text().endswith("computer:  sad  a new one while open"), 5,
                         "the new caption to show")
    process_events_until(widget.at_end, 3, "the window to follow the new caption")

    # A guess and a strong emotion are said in words: the list has no color or weight to show them.
    store.add_entry(RecentEntry(time.time(), "maybe cross", "angry", "you", emotion_uncertain=True))
    process_events_until(lambda: widget.text().endswith("you:  angry?  maybe cross"), 5, "the uncertain caption")
    store.add_entry(RecentEntry(time.time(), "really cross", "angry", "you", strong=True))
    process_events_until(lambda: widget.text().endswith("you:  angry, strong  really cross"), 5, "the strong caption")
    process_events_until(widget.at_end, 3, "the window to follow them")

    # A reader who scrolled up to read stays where they are when a caption comes.
    bar.setValue(0)
    store.add_entry(RecentEntry(time.time(), "another", None, "you"))
    process_events_until(lambda: widget.text().endswith("another"), 5, "the next caption")
    assert bar.value() == 0

    subprocess.run(["xdotool", "key", "--window", wid, "Escape"], check=True, timeout=10)
    process_events_until(lambda: not widget.isVisible() and not windows_named(TITLE), 10, "Esc to close the window")


def test_an_empty_window_says_there_is_nothing_yet(window):
    widget, _ = window
    widget.open()
    process_events_until(lambda: windows_named(TITLE), 10, "the window to map")
    assert widget.text() == "" and "No captions" in widget._text.placeholderText()
    widget.toggle()
    process_events_until(lambda: not windows_named(TITLE), 10, "toggle to close it")


@pytest.mark.slow
def test_the_recent_captions_hotkey_of_a_running_daemon_opens_and_closes_the_window(tmp_path, window_manager,
                                                                                      whisper_model_dir):
    cfg = config(tmp_path, whisper_model_dir, trigger={"mode": "voice"}, hotkey={"recent_combo": "<ctrl>+<alt>+r"})
    args = ["--no-tray", "--input-file", str(JFK), "--fast"]
    daemon = LiveDaemon(tmp_path, args, env_for(display=window_manager), cfg)
    try:
        assert daemon.wait_ready()["hotkey"], daemon.log()
        daemon.wait_for(daemon.captions, 90, "a caption")
        subprocess.run(["xdotool", "key", "ctrl+alt+r"], check=True, env=env_for(display=window_manager), timeout=10)
        daemon.wait_for(lambda: windows_named(TITLE, window_manager), 15, "the hotkey to open the window")
        subprocess.run(["xdotool", "key", "ctrl+alt+r"], check=True, env=env_for(display=window_manager), timeout=10)
        daemon.wait_for(lambda: not windows_named(TITLE, window_manager), 15, "the hotkey to close it again")
        assert "Traceback" not in daemon.log(), daemon.log()
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log()
    (exit_record,) = daemon.events("exit")
    assert exit_record["clean"] and exit_record["threads"] == [], exit_record
