"""`subtone export|train|eval`: the model factory's commands, and the one way every command runs.

Two entry points build their parser from here: `subtone` (subtone.service.cli.main, which adds the
runtime commands) and `python -m subtone.export` (a venv with the export tools but without the
live extra, e.g. for NeMo). Both get the same global options, the same factory commands and the
same error handling. This module and the registrations it imports stay light (no torch): every
`subtone` start builds the whole tree; the heavy modules load inside each command's `run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from subtone.config import ConfigError
from subtone.export import nemo_cli, whisper_cli
from subtone.export.emotion import cli as emotion_cli
from subtone.service.errors import SubtoneError

EXTRA_INSTALL = "pip install -c constraints.txt -e '.[export]'"
TRAIN_INSTALL = "pip install -c constraints.txt -e '.[train]'"
TRAIN_MODULES = frozenset({"torch", "torchaudio", "onnxscript", "matplotlib", "librosa"})
"""What only the train extra brings: torch (emotion training and export, the NeMo exporter) and
the emotion reports' plotting and features. The export extra (onnx, the Whisper wheels) has no torch."""

Registration = Callable[[argparse._SubParsersAction], None]

# command → (one-line help, description, the registrations of its targets)
COMMANDS: dict[str, tuple[str, str, tuple[Registration, ...]]] = {
    "export": (
        "make ONNX models into models_onnx/ (whisper, nemo, emotion)",
        "Write a model as ONNX into the models folder (models.dir; default: the project's models_onnx/) "
        f"and register it in that folder's manifest.json. Needs the export extra: {EXTRA_INSTALL}; "
        f"emotion and nemo also need torch, from the train extra: {TRAIN_INSTALL}",
        (whisper_cli.register, nemo_cli.register, emotion_cli.register_export),
    ),
    "train": (
        "train a model (emotion)",
        "Train a model on labelled clips; writes a run folder under runs/ for `subtone export`. "
        f"Needs the train extra (torch): {TRAIN_INSTALL}",
        (emotion_cli.register_train,),
    ),
    "eval": (
        "evaluate a model on a manifest (emotion)",
        f"Score a model on labelled clips and write a report folder. Needs the train extra: {TRAIN_INSTALL}",
        (emotion_cli.register_eval,),
    ),
}


def extra_for(module: str) -> tuple[str, str]:
    """The extra that installs `module` (a top-level or dotted name), and the command that installs it."""
    if module.split(".")[0] in TRAIN_MODULES:
        return "train", TRAIN_INSTALL
    return "export", EXTRA_INSTALL


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options before the command, read by every command (settings via subtone.config.settings_from_args)."""
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (providers, timings)")
    parser.add_argument("--config", metavar="FILE", help="settings file to use instead of the user config")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `export`, `train` and `eval`, each with its targets, to a command parser."""
    for name, (help_text, description, registrations) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=description)
        targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)
        for add in registrations:
            add(targets)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, set up logging, run the command; a problem the user can fix is one line and exit 1."""
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
    except ModuleNotFoundError as exc:
        # The factory's tools come with the export extra (onnx, the Whisper wheels) or the train
        # extra (torch, matplotlib…); our own modules missing is a bug and keeps its traceback.
        if args.command not in COMMANDS or not exc.name or exc.name.startswith("subtone"):
            raise
        extra, install = extra_for(exc.name)
        print(f"subtone: `{parser.prog} {args.command} {args.target}` needs the {extra} extra ({exc.name} is not installed); "
              f"install it with: {install}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m subtone.export`: the factory commands only."""
    parser = argparse.ArgumentParser(
        prog="python -m subtone.export",
        description="subtone's model factory: the `subtone export|train|eval` commands, for a venv without the live extra.",
    )
    add_global_options(parser)
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), argv)
