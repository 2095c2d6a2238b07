"""`subtone export|train|eval`: the model factory's command line (needs the export extra)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from subtone.config import ConfigError
from subtone.service.errors import SubtoneError

# (command, target) → module with `register(subparsers)`; each sets `func` on its parser.
SUBCOMMANDS: dict[str, list[str]] = {
    "export": ["subtone.export.emotion.onnx_export", "subtone.export.whisper_cli", "subtone.export.nemo_cli"],
    "train": ["subtone.export.emotion.train"],
    "eval": ["subtone.export.emotion.evaluate"],
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="subtone", description="subtone's model factory")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, modules in SUBCOMMANDS.items():
        p = top.add_parser(command, help=f"{command} a model")
        targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)
        for module in modules:
            importlib.import_module(module).register(targets)
    return parser


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (SubtoneError, ConfigError) as exc:
        print(f"subtone: {exc}", file=sys.stderr)
        return 1
