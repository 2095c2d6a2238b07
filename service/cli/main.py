"""`subtone` command line: one small module per command under subtone.service.cli."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from subtone.config import ConfigError
from subtone.service.errors import SubtoneError

# Runtime commands: each module has `register(subparsers)` and sets `func` on its parser.
RUNTIME_COMMANDS = [
    "subtone.service.cli.transcribe",
    "subtone.service.cli.doctor",
    "subtone.service.cli.devices",
    "subtone.service.cli.run",
    "subtone.service.cli.history",
]

# Model-factory commands need the export extra (torch); their parsers live in subtone.export.
FACTORY_COMMANDS = {
    "export": "make ONNX models into models_onnx/ (whisper, nemo, emotion)",
    "train": "train a model (emotion)",
    "eval": "evaluate a model on a manifest (emotion)",
}

EPILOG = """\
first steps:
  subtone export whisper            build the default speech model (needs the export extra)
  subtone transcribe talk.wav       print what is said, with the speaker's emotion
  subtone doctor                    check models, providers and microphones
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="subtone",
        description="Live captions colored by the speaker's emotion, on your own machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (providers, timings)")
    parser.add_argument("--config", metavar="FILE", help="settings file to use instead of the user config")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in RUNTIME_COMMANDS:
        importlib.import_module(module).register(sub)
    for name, help_text in FACTORY_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_run_factory, factory=name)
    return parser


def _run_factory(args: argparse.Namespace) -> int:
    try:
        factory = importlib.import_module("subtone.export.commands")
    except ModuleNotFoundError as exc:
        raise SubtoneError(
            f"`subtone {args.factory}` needs the export extra ({exc.name} is not installed); "
            "install it with: pip install -c constraints.txt -e '.[export]'"
        ) from None
    return factory.main([args.factory, *args.rest])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (SubtoneError, ConfigError) as exc:
        print(f"subtone: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
