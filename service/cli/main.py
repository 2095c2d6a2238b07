"""`subtone` command line: one small module per command under subtone.service.cli.

The composition root: the runtime commands from here, the model factory's `export`, `train` and
`eval` from subtone.export.commands, in one parser tree so every level answers --help. The global
options and the error handling come from there too, so `python -m subtone.export` (which may not
import this package) behaves the same.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from subtone.export import commands as factory

# Runtime commands: each module has `register(subparsers)` and sets `func` on its parser.
RUNTIME_COMMANDS = [
    "subtone.service.cli.transcribe",
    "subtone.service.cli.doctor",
    "subtone.service.cli.devices",
    "subtone.service.cli.run",
    "subtone.service.cli.history",
]

EPILOG = """\
first steps:
  subtone export whisper            build the default speech model (needs the export extra)
  subtone transcribe talk.wav       print what is said, with the speaker's emotion
  subtone doctor                    check models, providers and microphones

every command has its own --help, e.g. subtone export whisper --help
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="subtone",
        description="Live captions colored by the speaker's emotion, on your own machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    factory.add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in RUNTIME_COMMANDS:
        importlib.import_module(module).register(sub)
    factory.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return factory.dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
