"""`subtone export nemo`: a NeMo CTC, RNN-T or TDT checkpoint as a subtone speech model."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from subtone.config import settings_from_args


def register(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser(
        "nemo",
        help="a NeMo speech model (.nemo checkpoint: FastConformer, Parakeet, Conformer-Transducer)",
        description=(
            "Export a NeMo ASR checkpoint (CTC, RNN-T or TDT head; SentencePiece or character vocabulary) "
            "to ONNX graphs the service decodes without torch or NeMo, and register it in manifest.json. "
            "Needs NeMo: pip install -c constraints.txt 'nemo_toolkit[asr]'."
        ),
        epilog=(
            "examples: subtone export nemo --checkpoint stt_en_fastconformer_ctc_large.nemo --language en\n"
            "          subtone export nemo --pretrained nvidia/parakeet-tdt-0.6b-v2 --name parakeet-tdt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="FILE.nemo", help="a downloaded .nemo file")
    source.add_argument("--pretrained", metavar="NAME", help="a model NeMo downloads itself (needs the internet)")
    p.add_argument("--name", help="manifest name (default: from the file or model name); select it with asr.model")
    p.add_argument("--language", metavar="xx", help="the model's language code, e.g. en or ko (default: from the checkpoint, else 'und')")
    p.add_argument("--out", metavar="DIR", help="models folder (default: models.dir, i.e. the project's models_onnx/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # first: a broken --config file is reported before the slow imports
    from subtone.export.nemo_export import export_nemo

    models_dir = Path(args.out) if args.out else settings.models_dir()
    command = "subtone export nemo " + " ".join(shlex.quote(a) for a in _own_args(args))
    result = export_nemo(
        models_dir,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        pretrained=args.pretrained,
        name=args.name,
        language=args.language,
        export_command=command,
    )
    print(f"done in {result.seconds:.1f} s: '{result.name}' ({result.family}) in {result.out_dir}")
    print(f"use it: subtone transcribe --model {result.name} FILE.wav, or set asr.model = \"{result.name}\"")
    return 0


def _own_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    if args.checkpoint:
        out += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    else:
        out += ["--pretrained", args.pretrained]
    for flag in ("name", "language", "out"):
        value = getattr(args, flag)
        if value:
            out += [f"--{flag}", str(value)]
    return out
