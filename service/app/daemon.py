"""`subtone run`: the resident service. Builds the pieces, runs the main loop, shuts down cleanly.

With an overlay or a tray, the main thread runs Qt's event loop (the overlay is a Qt window; the
tray's GTK backend runs inside Qt's glib loop via `run_detached`). Without either (tests, soak
runs) it waits on a plain event. Either way SIGTERM, SIGINT (Ctrl+C) and the tray's Quit end in
the same `shutdown`: open utterances are closed, the audio stream is closed, the worker
decodes what is waiting, the history is flushed, and every thread it started is joined.

Errors that the user can fix (microphone gone, model missing, hotkey impossible) are logged,
shown in the tray, and the service keeps going with what still works.

Changes while running (tray: audio source, "Reload settings"; the settings file saved, polled every
WATCH_S) run one at a time on the "daemon-task" thread, since streams and hotkeys take a moment to
stop and open; what touches Qt (overlay, tray, the recent-captions window) is posted to the main
thread.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from subtone.config import Settings
from subtone.config.settings import DEFAULT_TOML, ConfigError, load_settings_forgiving, user_config_path
from subtone.service.app.banners import banner_for, how_to_start
from subtone.service.app.controller import SOURCES, Controller
from subtone.service.app.recent import RecentCaptions, entry_line
from subtone.service.app.settings_reload import (
    ReloadPlan,
    SettingsFileWatch,
    plan_reload,
    reload_banner,
    settings_in_effect,
)
from subtone.service.app.event_log import EventLog
from subtone.service.events import MICROPHONE, SYSTEM, Caption, ServiceState, StateChanged
from subtone.service.app.history import CaptionHistory, history_path
from subtone.service.app.instance_lock import InstanceLock

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_S = 0.2
"""How often the main loop checks for a stop request (tray Quit, end of an input file)."""
WATCH_S = 2.0
"""How often the settings file is checked for a save (then reloaded as by the tray's item)."""
ALREADY_RUNNING = "subtone is already running: use its tray icon"
"""What a second `subtone run` shows on screen (for a few seconds) before it exits."""
SOURCE_BANNERS = {
    "microphone": "captioning the microphone",
    "system": "captioning what this computer plays",
    "both": "captioning the microphone and what this computer plays",
}


@dataclass(frozen=True)
class DaemonOptions:
    tray: bool = True
    overlay: bool = True
    hotkey: bool = True
    events_jsonl: Path | None = None
    """Write every caption and state change here as JSON lines."""
    input_file: Path | None = None
    """Play this recording instead of opening a microphone."""
    input_realtime: bool = True
    exit_when_done: bool = False
    """With input_file: stop once it has played and its captions are out."""
    settings_file: Path | None = None
    """The user settings file the tray's "Settings" item opens."""
    settings_problems: tuple[str, ...] = ()
    """Keys of the settings file that were skipped (or the file, when it is not TOML): shown as a note."""
    settings_overrides: tuple[tuple[str, Any], ...] = ()
    """The command line's dotted overrides (--mode, --device): a reload keeps them on top of the file."""
    watch_settings: bool = True
    """Reload the settings file when it is saved."""


class Daemon:
    def __init__(self, settings: Settings, options: DaemonOptions) -> None:
        self.settings = settings
        self.options = options
        self._stop_requested = threading.Event()
        self._input_ended = False
        """end_of_input was sent (once: each one would flush the trigger again)."""
        self._caption_sinks: list[Callable[[Caption], None]] = []
        self._state_sinks: list[Callable[[StateChanged], None]] = []
        self._note_sinks: list[Callable[[str], None]] = []
        self.event_log = EventLog(options.events_jsonl) if options.events_jsonl else None
        self.history: CaptionHistory | None = None
        if settings.history.enabled:
            try:
                self.history = CaptionHistory(history_path(settings.history))
            except OSError as exc:
                log.error("caption history off: cannot write %s (%s)", history_path(settings.history), exc)
        if self.event_log:
            self._caption_sinks.append(self.event_log.caption)
            self._state_sinks.append(self.event_log.state)
            self._note_sinks.append(self.event_log.note)
        if self.history:
            self._caption_sinks.append(self.history.append)
        self.recent = RecentCaptions()
        """This session's recent finished captions, for the "Recent captions" window."""
        self._caption_sinks.append(self.recent.add)
        self.controller = Controller(
            settings,
            self._make_sources(),
            on_caption=self._fan_out(self._caption_sinks),
            on_state=self._fan_out(self._state_sinks),
            on_note=self._fan_out(self._note_sinks),
            on_banner=lambda text: self._banner_sink(text),
            source_factory=None if options.input_file else self._make_source,
        )
        self.controller.settings_note = _settings_note(options.settings_problems)
        self.hotkey: Any = None
        self._banner_sink: Callable[[str], None] = lambda text: None
        """The overlay's banner (via the Qt main thread), once there is an overlay."""
        self._shown_state: StateChanged | None = None
        self._banner_lock = threading.Lock()
        self._device_sink: Callable[[list[str]], None] = lambda names: None
        """Where the capture thread's fresh device lists go (the tray, via the Qt main thread)."""
        self._on_main: Callable[[Callable[[], None]], None] = lambda fn: fn()
        """Runs a function on the Qt main thread (at once, without Qt)."""
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="daemon-task")
        self.tray: Any = None
        self.overlay: Any = None
        self.recent_window: Any = None
        self.recent_hotkey: Any = None
        self._qt = False
        self._watch = SettingsFileWatch(self.settings_path) if options.watch_settings and not options.input_file else None
        self._watch_due = time.monotonic() + WATCH_S

    @property
    def sources(self) -> dict[str, Any]:
        """The audio sources running now (they change with the tray's Source menu)."""
        return self.controller.sources

    @property
    def source(self) -> Any:
        return self.controller.source

    @property
    def settings_path(self) -> Path:
        return self.options.settings_file or user_config_path()

    @staticmethod
    def _fan_out(sinks: list[Callable[[Any], None]]) -> Callable[[Any], None]:
        def post(item: Any) -> None:
            for sink in list(sinks):
                try:
                    sink(item)
                except Exception:
                    log.exception("sink %r failed", sink)

        return post

    def _make_sources(self) -> dict[str, Any]:
        """The recording played instead of a microphone, or [audio] source's microphone and/or system audio."""
        audio = self.settings.audio
        if self.options.input_file:
            from subtone.service.audio.capture import FileSource

            return {MICROPHONE: FileSource(self.options.input_file, audio.block_ms, realtime=self.options.input_realtime)}
        return {label: self._make_source(label) for label in SOURCES[audio.source]}

    def _make_source(self, label: str) -> Any:
        """The microphone or the system audio, with the settings in effect (the controller's factory)."""
        audio = self.settings.audio
        if label == MICROPHONE:
            from subtone.service.audio.capture import MicrophoneCapture

            return MicrophoneCapture(
                audio.device,
                audio.block_ms,
                on_error=lambda message: self.controller.source_error(MICROPHONE, message),
                backoff_max_s=audio.reopen_backoff_max_s,
                latency_ms=audio.latency_ms,
                on_devices=lambda names: self._device_sink(names),
            )
        from subtone.service.audio.system import SystemAudioCapture

        return SystemAudioCapture(
            audio.system_device,
            audio.block_ms,
            on_error=lambda message: self.controller.source_error(SYSTEM, message),
            backoff_max_s=audio.reopen_backoff_max_s,
        )

    # -- running -----------------------------------------------------------------------
    def run(self) -> int:
        if self.options.overlay or self.options.tray:
            if _has_display():
                return self._run_qt()
            # Qt aborts the process when it cannot reach a display: captions still go to the
            # history and the events log, so run on without the windows.
            log.error("no display (DISPLAY and WAYLAND_DISPLAY unset): running without overlay and tray")
        return self._run_plain()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _should_stop(self) -> bool:
        if self._stop_requested.is_set():
            return True
        source_done = getattr(self.source, "finished", None)
        if source_done is None or not source_done.is_set() or not self.source.blocks.empty():
            return False
        if not self._input_ended:  # a recording that ends mid-speech still gets its final caption
            self._input_ended = True
            self.controller.end_of_input()
        if self.options.exit_when_done:
            stats = self.controller.worker.stats()
            busy = self.controller.state().state is ServiceState.RECOGNISING or self.controller.open_utterances()
            return stats.pending == 0 and not busy
        return False

    def _run_plain(self) -> int:
        previous = {sig: signal.signal(sig, lambda *_: self.request_stop()) for sig in STOP_SIGNALS}
        try:
            self._start()
            while not self._should_stop():
                time.sleep(POLL_S)
                self._check_settings_file()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _run_qt(self) -> int:
        os.environ.setdefault("NO_AT_BRIDGE", "1")
        from PySide6.QtCore import QObject, QSocketNotifier, Qt, QTimer, Signal
        from PySide6.QtWidgets import QApplication

        class _DeviceLists(QObject):
            changed = Signal(object)

        class _MainThread(QObject):
            call = Signal(object)

        from subtone.overlay.bridge import CaptionBridge

        app = QApplication.instance() or QApplication(["subtone"])
        app.setQuitOnLastWindowClosed(False)
        self._qt = True
        main = _MainThread()
        main.call.connect(lambda fn: fn(), Qt.ConnectionType.QueuedConnection)
        self._on_main = main.call.emit
        bridge = CaptionBridge()
        tray = None
        if self.options.overlay:
            from subtone.overlay.window import CaptionOverlay

            overlay = self.overlay = CaptionOverlay(self.settings.overlay)
            bridge.attach_overlay(overlay)
            self._caption_sinks.insert(0, bridge.post_caption)
            self._note_sinks.insert(0, bridge.post_note)
            self._banner_sink = bridge.post_banner
            self._state_sinks.append(self._state_banner)
        if self.options.tray:
            tray = self.tray = self._make_tray()
            if tray is not None:
                bridge.attach_state(tray.set_state)
                self._state_sinks.insert(0, bridge.post_state)
                # Device lists come from the capture thread; the tray gets them on this thread.
                device_lists = _DeviceLists()
                device_lists.changed.connect(
                    lambda names: tray.set_devices(names, self._current_device()), Qt.ConnectionType.QueuedConnection
                )
                self._device_sink = device_lists.changed.emit

        # Python runs signal handlers only when it gets control; the wake-up fd makes Qt's loop
        # notice a signal at once (the socket becomes readable) and hand control back.
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(writer.fileno())
        on_signal = lambda *_: self.request_stop()  # noqa: E731
        previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
        notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

        def drain_and_check() -> None:
            try:
                reader.recv(64)
            except OSError:
                pass
            if self._should_stop():
                app.quit()

        notifier.activated.connect(drain_and_check)
        def poll() -> None:
            # pystray's GTK backend puts SIGINT back to the default (kill at once, losing the open
            # caption) when its loop starts: take it back, so Ctrl+C shuts down cleanly.
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not on_signal:
                    log.debug("signal %s handler was replaced; restoring subtone's", sig)
                    signal.signal(sig, on_signal)
            if self._should_stop():
                app.quit()
            self._check_settings_file()

        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(int(POLL_S * 1000))
        try:
            self._start()
            if tray is not None:
                tray.run_detached()
                poll()  # the tray may have taken SIGINT
                tray.set_state(self.controller.state())
                self._send_devices(tray)
            if not self._should_stop():
                app.exec()
        finally:
            timer.stop()
            notifier.setEnabled(False)
            if self.recent_window is not None:
                self.recent_window.close()
            if tray is not None:
                try:
                    tray.stop()
                except Exception:
                    log.exception("stopping the tray failed")
            self.shutdown()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            reader.close()
            writer.close()
        return 0

    def _state_banner(self, event: StateChanged) -> None:
        """Say on the overlay what a change of state means for the user (see banners.py)."""
        mode = self.controller.mode if MICROPHONE in self.sources else "voice"  # system audio: no key
        hint = how_to_start(mode, self.settings.hotkey.combo, self.options.hotkey)
        with self._banner_lock:  # state changes come from several threads
            text = banner_for(self._shown_state, event, hint)
            self._shown_state = event
        if text:
            self._banner_sink(text)

    def _start(self) -> None:
        self.controller.start()
        if self.options.hotkey:
            self._start_hotkey()
            self._start_recent_hotkey()
        if self.event_log:
            names = ", ".join(getattr(source, "device_name", "") for source in self.sources.values())
            self.event_log.ready(self.hotkey is not None, names)

    def _start_hotkey(self) -> None:
        try:
            from subtone.service.trigger.hotkey import HotkeyListener

            self.hotkey = HotkeyListener(
                self.settings.hotkey.combo, self.controller.hotkey_pressed, self.controller.hotkey_released
            )
            self.hotkey.start()
        except Exception as exc:  # no display, Wayland, bad combo: voice mode still works
            self.hotkey = None
            message = _first_line(exc)
            log.warning("push-to-talk hotkey unavailable: %s", message)
            self._fan_out(self._note_sinks)(f"hotkey unavailable: {message}")

    def _start_recent_hotkey(self) -> None:
        """The key that opens and closes the recent-captions window ([hotkey] recent_combo; "" for none)."""
        combo = self.settings.hotkey.recent_combo
        if not combo or not self._qt:
            return
        try:
            from subtone.service.trigger.hotkey import HotkeyListener

            self.recent_hotkey = HotkeyListener(combo, lambda: self._on_main(self._toggle_recent), lambda: None)
            self.recent_hotkey.start()
        except Exception as exc:
            self.recent_hotkey = None
            message = _first_line(exc)
            log.warning("recent-captions hotkey unavailable: %s", message)

    def _stop_hotkeys(self) -> None:
        for name in ("hotkey", "recent_hotkey"):
            listener = getattr(self, name)
            setattr(self, name, None)
            if listener is not None:
                try:
                    listener.stop()
                except Exception:
                    log.exception("stopping the %s listener failed", name)

    # -- the recent-captions window (Qt main thread) -------------------------------------
    def open_recent(self) -> None:
        """The tray's "Recent captions": show the window (any thread)."""
        self._on_main(lambda: self._recent(toggle=False))

    def _toggle_recent(self) -> None:
        self._recent(toggle=True)

    def _recent(self, toggle: bool) -> None:
        if not self._qt:
            log.warning("no window for recent captions without a display")
            return
        if self.recent_window is None:
            from subtone.overlay.recent_window import RecentCaptionsWindow

            self.recent_window = RecentCaptionsWindow(self.recent, entry_line, self.settings.overlay.font_family,
                                                      self.recent.max_age_s / 60)
        if toggle:
            self.recent_window.toggle()
        else:
            self.recent_window.open()

    # -- changes while running (the daemon-task thread) ----------------------------------
    def switch_source(self, kind: str) -> Future:
        """The tray's Source menu: caption the microphone, the system audio or both (any thread)."""
        return self._tasks.submit(self._switch_source, kind)

    def _switch_source(self, kind: str) -> None:
        if kind == self.controller.source_kind:
            return
        if self.controller.set_source(kind):
            self._banner_sink(SOURCE_BANNERS[kind])
            self._on_main(self._send_tray_source)
            if MICROPHONE in self.sources and self.tray is not None:
                self._on_main(lambda: self._send_devices(self.tray))
        else:
            self._banner_sink("the audio source cannot change while a recording plays")
            self._on_main(self._send_tray_source)

    def _send_tray_source(self) -> None:
        if self.tray is not None:
            self.tray.set_source(self.controller.source_kind)

    def reload_settings(self) -> Future:
        """The tray's "Reload settings" (and a save of the file): apply what can change now (any thread)."""
        return self._tasks.submit(self._reload)

    def _check_settings_file(self) -> None:
        if self._watch is None or time.monotonic() < self._watch_due:
            return
        self._watch_due = time.monotonic() + WATCH_S
        if self._watch.changed():
            log.info("settings file %s changed: reloading", self.settings_path)
            self._tasks.submit(self._reload, quiet_if_unchanged=True)

    def _reload(self, quiet_if_unchanged: bool = False) -> ReloadPlan | None:
        """Re-read the settings file and apply it; the banner says what happened (a save that changed
        nothing, e.g. a comment, says nothing when `quiet_if_unchanged`)."""
        try:
            reloaded, problems = load_settings_forgiving(self.options.settings_file,
                                                         dict(self.options.settings_overrides))
        except ConfigError as exc:  # the --config file is gone: keep what runs
            log.error("settings not reloaded: %s", exc)
            self._banner_sink(f"⚠ settings not reloaded: {exc}")
            return None
        plan = plan_reload(self.settings, reloaded, problems, self.controller.emotion_loaded)
        for problem in problems:
            log.error("settings: %s", problem)
        self.settings = settings_in_effect(self.settings, reloaded, plan)
        self.controller.settings = self.settings  # sources and triggers made from now on use them
        self._apply(plan)
        self.controller.set_settings_note(_settings_note(problems))
        text = reload_banner(plan)
        log.info("%s", text)
        if self.event_log:
            self.event_log.reload(text, plan.live, plan.restart, plan.problems)
        if plan.changed or plan.problems or not quiet_if_unchanged:
            self._banner_sink(text)
        return plan

    def _apply(self, plan: ReloadPlan) -> None:
        """Apply the keys of a reload that change live (self.settings holds their new values)."""
        live = set(plan.live)
        self._apply_listening(live)
        self._apply_audio(live)
        self._apply_look(live)

    def _apply_listening(self, live: set[str]) -> None:
        s = self.settings
        if "trigger.mode" in live:
            self.controller.set_mode(s.trigger.mode)
            self._on_main(lambda: self.tray and self.tray.set_mode(s.trigger.mode))
        if "trigger.listening" in live:
            self.controller.set_listening(s.trigger.listening)
            self._on_main(lambda: self.tray and self.tray.set_listening(s.trigger.listening))
        if {"hotkey.combo", "hotkey.recent_combo"} & live and self.options.hotkey:
            self._stop_hotkeys()
            self._start_hotkey()
            self._start_recent_hotkey()

    def _apply_audio(self, live: set[str]) -> None:
        s = self.settings
        if "audio.device" in live and MICROPHONE in self.sources:
            self.controller.set_device(s.audio.device)
        if "audio.system_device" in live and SYSTEM in self.sources:
            self.sources[SYSTEM].set_device(s.audio.system_device)
        if "audio.source" in live:
            self._switch_source(s.audio.source)
        if {"audio.microphone_name", "audio.system_name"} & live:
            self.controller.set_speaker_names(s.audio.microphone_name, s.audio.system_name)

    def _apply_look(self, live: set[str]) -> None:
        s = self.settings
        if "emotion.enabled" in live:
            self.controller.set_emotion_shown(s.emotion.enabled)
        if "emotion.min_confidence" in live:
            self.controller.set_min_confidence(s.emotion.min_confidence)
        if any(key.startswith("overlay.") for key in live) and self.overlay is not None:
            overlay_settings = s.overlay
            self._on_main(lambda: self.overlay.apply_settings(overlay_settings))

    def shutdown(self) -> None:
        """Idempotent: stop hotkey, controller (audio, trigger, worker), flush history and logs."""
        if getattr(self, "_shut_down", False):
            return
        self._shut_down = True
        self._tasks.shutdown(wait=True)  # a source switch or reload under way ends first
        self._stop_hotkeys()
        clean = self.controller.stop()
        if self.history:
            self.history.close()
        left = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
        lost = self.controller.lost_seconds + sum(float(getattr(source, "lost_seconds", 0.0))
                                                  for source in self.sources.values())
        log.info(
            "stopped %s; threads still running: %s; audio lost: %.1f s",
            "cleanly" if clean else "with a timeout",
            left or "none",
            lost,
        )
        if self.event_log:
            self.event_log.exit(clean, left, lost)
            self.event_log.close()

    # -- tray ----------------------------------------------------------------------------
    def _make_tray(self) -> Any:
        try:
            from subtone.service.app.tray import Tray

            return Tray(
                on_listening=self.controller.set_listening,
                on_mode=self.controller.set_mode,
                on_device=self._switch_device,
                on_open_settings=self.open_settings,
                on_open_history=self.open_history,
                on_quit=self.request_stop,
                listening=self.controller.listening,
                mode=self.controller.mode,
                on_source=self.switch_source,
                on_recent=self.open_recent,
                on_reload=self.reload_settings,
                source=self.controller.source_kind,
            )
        except Exception as exc:  # no tray host, no GTK: captions still work
            log.warning("tray unavailable: %s", exc)
            return None

    def _send_devices(self, tray: Any) -> None:
        try:
            from subtone.service.audio.capture import list_input_devices

            names = [d.name for d in list_input_devices()]
        except Exception as exc:
            log.warning("cannot list microphones: %s", exc)
            names = []
        tray.set_devices(names, self._current_device())

    def _current_device(self) -> str:
        """For the tray: "" marks "System default", else the name of the device in use."""
        microphone = self.sources.get(MICROPHONE)
        return getattr(microphone, "device_name", "") if microphone is not None and self.settings.audio.device else ""

    def _switch_device(self, name: str) -> None:
        self.controller.set_device(name)

    def open_settings(self) -> Path:
        path = self.settings_path
        if not path.exists():
            write_commented_defaults(path)
            if self._watch is not None:
                self._watch.changed()  # nothing to reload: every line is commented out
        _open_with_desktop(path)
        return path

    def open_history(self) -> Path | None:
        if self.history is None:
            self._fan_out(self._note_sinks)("caption history is off ([history] enabled = false)")
            return None
        _open_with_desktop(self.history.path)
        return self.history.path


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__


def _settings_note(problems: tuple[str, ...]) -> str:
    if not problems:
        return ""
    first = problems[0]
    more = f" (+{len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
    return f"settings: {first}{more}"


def _has_display() -> bool:
    platform_name = os.environ.get("QT_QPA_PLATFORM", "")
    if platform_name.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def write_commented_defaults(path: Path) -> None:
    """A settings file with every default present but commented out: uncomment what you change."""
    lines = []
    for line in DEFAULT_TOML.read_text(encoding="utf-8").splitlines():
        lines.append(f"# {line}" if re.match(r"^[A-Za-z_][\w-]*\s*=", line) else line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("wrote %s from the defaults (all commented out)", path)


def _open_with_desktop(path: Path) -> None:
    opener = shutil.which("xdg-open")
    if opener is None:
        log.warning("cannot open %s: xdg-open not found", path)
        return
    subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def run_daemon(settings: Settings, options: DaemonOptions, announce: Callable[[str], None] | None = None) -> int:
    """Exit status 1 when another subtone already runs for this user (a script should know)."""
    lock = InstanceLock()
    if not lock.acquire():
        message = f"subtone: already running (pid {lock.holder or '?'}; lock {lock.path})"
        (announce or (lambda text: print(text, file=sys.stderr)))(message)
        if options.overlay and _has_display():
            # Started from a menu, nobody sees stderr: say it where the captions appear.
            from subtone.overlay.notice import show_notice

            show_notice(settings.overlay, ALREADY_RUNNING)
        return 1
    try:
        daemon = Daemon(settings, options)
        return daemon.run()
    finally:
        lock.release()
