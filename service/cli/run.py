"""`subtone run`: the live-caption service (tray, overlay, hotkey, microphone)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from subtone.config.settings import load_settings_forgiving

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="start live captions (tray icon, caption overlay, push-to-talk hotkey)",
        description="Caption what the microphone hears, over every app. One instance per user: "
        "a second `subtone run` says so and exits.",
        epilog="example: subtone run --mode voice          (caption whenever someone speaks)",
    )
    p.add_argument("--mode", choices=("push-to-talk", "voice", "both"), help="what opens a caption (default: trigger.mode)")
    p.add_argument("--device", help="microphone: index or part of its name from `subtone devices` (default: audio.device)")
    p.add_argument("--no-tray", action="store_true", help="no tray icon (Ctrl+C or SIGTERM stops it)")
    p.add_argument("--no-overlay", action="store_true", help="no caption window (use with --events-jsonl)")
    p.add_argument("--no-hotkey", action="store_true", help="no global push-to-talk hotkey")
    p.add_argument("--events-jsonl", metavar="FILE", type=Path, help="append every caption and state change to FILE as JSON lines")
    p.add_argument("--input-file", metavar="AUDIO", type=Path, help="caption a recording played in real time instead of the microphone")
    p.add_argument("--fast", action="store_true", help="with --input-file: read it as fast as the recognizer keeps up")
    p.add_argument("--exit-when-done", action="store_true", help="with --input-file: stop when it has been captioned")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The daemon pulls in PortAudio, webrtcvad and Qt: load them only when it runs, so the
    # model-factory commands work in a venv without the live extra.
    from subtone.service.app.daemon import DaemonOptions, run_daemon

    overrides = {k: v for k, v in {"trigger.mode": args.mode, "audio.device": args.device}.items() if v is not None}
    # A typo in the settings file must not leave someone without captions: the bad key is
    # skipped (and shown), the rest of the file applies.
    settings, problems = load_settings_forgiving(Path(args.config) if args.config else None, overrides)
    for problem in problems:
        log.error("settings: %s", problem)
    options = DaemonOptions(
        tray=not args.no_tray,
        overlay=not args.no_overlay,
        hotkey=not args.no_hotkey,
        events_jsonl=args.events_jsonl,
        input_file=args.input_file,
        input_realtime=not args.fast,
        exit_when_done=args.exit_when_done,
        settings_file=Path(args.config) if args.config else None,
        settings_problems=problems,
        settings_overrides=tuple(overrides.items()),
    )
    return run_daemon(settings, options)
