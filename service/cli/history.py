"""`subtone history`: where the caption history is, and export to .srt or .txt."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from subtone.config import settings_from_args
from subtone.service.errors import SubtoneError
from subtone.service.app.history import FORMATS, history_path, read_history, select, to_srt, to_txt, write_private


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="the caption history: print its path or export it",
        description="Captions shown by `subtone run` are kept in a private JSON-lines file when [history] is on.",
        epilog="example: subtone history export --format srt --out meeting.srt",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("path", help="print where the history file is",
                       description="Print the history file's path ([history] file, else history.jsonl in the user data folder).")
    export = actions.add_parser("export", help="write the history as subtitles (.srt) or plain text (.txt)",
                                description="Write the caption history as SubRip subtitles (.srt) or plain text (.txt).")
    export.add_argument("--format", choices=FORMATS, default="txt", help="srt or txt (default: txt)")
    export.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    export.add_argument("--file", metavar="HISTORY", help="history file to read (default: the configured one)")
    export.add_argument("--since", metavar="WHEN", type=_when,
                        help="only captions from this day or moment on (2026-12-03 or 2026-12-03T14:00)")
    export.add_argument("--last-session", action="store_true", help="only the captions of the last `subtone run`")
    p.set_defaults(func=run)


def _when(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date or moment such as 2026-12-03 or 2026-12-03T14:00")
    return moment if moment.tzinfo else moment.astimezone()  # a local time, as the user reads the clock


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    path = history_path(settings.history)
    if args.action == "path" or args.action is None:
        print(path)
        return 0
    records = select(read_history(Path(args.file) if args.file else path), args.since, args.last_session)
    text = to_srt(records) if args.format == "srt" else to_txt(records)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise SubtoneError(f"{out} is a folder; expected a file name for the export")
        write_private(out, text)
        print(f"{len(records)} captions written to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
