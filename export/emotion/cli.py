"""`subtone export|train|eval emotion`: their options, without importing torch.

Every `subtone` start builds these parsers, so this module stays light: the work is in
onnx_export.py, train.py and evaluate.py, imported only when their command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from subtone.config import settings_from_args
from subtone.config.settings import project_models_dir

REPO = project_models_dir().parent
DEFAULT_MANIFEST = REPO.parent / "shared" / "data" / "emotion" / "manifest.csv"
RUNS = REPO / "runs"
DEFAULT_NARRATION = REPO.parent / "shared" / "data" / "asr-dev" / "manifest.jsonl"

# The recipe's defaults, as in train.TrainConfig (which needs torch to import);
# tests/test_cli_tree.py checks that the two agree.
EPOCHS = 32
MEMBERS = 3
TESS_PER_EPOCH = 800
# The head on Whisper base's encoder (head_train.HeadConfig): its own defaults.
HEAD_EPOCHS = 40
HEAD_MEMBERS = 2
ENCODERS = ("whisper-base",)


def recipe_sizes(args: argparse.Namespace) -> tuple[int, int]:
    """(epochs, members) of `subtone train emotion`: as given, else the chosen recipe's defaults."""
    head = getattr(args, "encoder", None) is not None
    epochs = args.epochs if args.epochs is not None else (HEAD_EPOCHS if head else EPOCHS)
    members = args.members if args.members is not None else (HEAD_MEMBERS if head else MEMBERS)
    return epochs, members


def register_export(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser("emotion", help="the trained emotion model as ONNX, with its model card",
                           description="Export a training run to <models.dir>/ with its model card and register it in\n"
                                       "manifest.json: a CNN run (model.pt, front end inside the graph) to emotion-cnn/, a\n"
                                       "head run (head.npz, from --encoder whisper-base) to emotion-whisper-base/.",
                           epilog="examples:\n  subtone export emotion --run runs/emotion-ensemble\n"
                                  "  subtone export emotion --encoder whisper-base   # the newest head run",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="run folder with model.pt or head.npz (default: the newest run of the kind)")
    p.add_argument("--encoder", choices=ENCODERS, help="export the newest head run on this encoder")
    p.add_argument("--out", metavar="DIR", type=Path, help="models folder (default: models.dir)")
    p.set_defaults(func=_export)


def register_train(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser("emotion", help="train the emotion model (or the prototype baseline)",
                           description="Train on the speaker split (export/emotion/speaker_split.json), then score the\n"
                                       "held-out speakers with a gain sweep. Writes runs/emotion-<time>/: config, model.pt,\n"
                                       "metrics, training and confusion plots. The default (3 members x 32 epochs) takes\n"
                                       "about 15 min on two CPU cores; `subtone export emotion` then ships the newest run.",
                           epilog="examples:\n  subtone train emotion\n  subtone train emotion --members 1 --epochs 8   "
                                  "# a quick look\n  subtone train emotion --loco-epochs 24         # plus leave-one-corpus-out\n"
                                  "  subtone train emotion --encoder whisper-base   # the head on Whisper base's encoder",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help=f"emotion manifest.csv (default: {DEFAULT_MANIFEST})")
    p.add_argument("--encoder", choices=ENCODERS,
                   help="train the small head on this speech model's encoder states instead of the CNN (Whisper base "
                        "must be exported; RAVDESS + TESS + the Korean manifest beside --manifest; about 10 min)")
    p.add_argument("--epochs", type=int, help=f"epochs per ensemble member (default: {EPOCHS}; {HEAD_EPOCHS} with --encoder)")
    p.add_argument("--members", type=int,
                   help=f"ensemble members, one seed each; time grows linearly (default: {MEMBERS}; {HEAD_MEMBERS} with --encoder)")
    p.add_argument("--tess-per-epoch", type=int, default=TESS_PER_EPOCH,
                   help="TESS clips drawn per epoch (RAVDESS train clips are all used, twice) (default: %(default)s)")
    p.add_argument("--loco-epochs", type=int, default=0, help="also train/score leave-one-corpus-out with this many epochs")
    p.add_argument("--loco-only", action="store_true", help="only the leave-one-corpus-out trainings (needs --loco-epochs)")
    p.add_argument("--baseline", action="store_true", help="train and score the prototype LSTM instead")
    p.add_argument("--baseline-budget-s", type=float, default=900.0, help="wall-clock cap on the baseline's training")
    p.add_argument("--out", type=Path, help="run folder (default: runs/emotion-<time>)")
    p.set_defaults(func=_train)


def register_eval(targets: argparse._SubParsersAction) -> None:
    p = targets.add_parser("emotion", help="score an emotion model on a manifest (accuracy, F1, coverage, gain sweep)",
                           description="Score an emotion model as the runtime runs it: the head (emotion-whisper-base)\n"
                                       "through its recognizer with its own Whisper encoder, the CNN through its ONNX graph.\n"
                                       "Writes metrics.json (accuracy, macro-F1, per-class F1 and confusion overall and per\n"
                                       "corpus; accuracy-coverage and what is shown at [emotion] min_confidence; gain sweep\n"
                                       "at -20/-10/0/+10 dB; for manifests with fewer than 6 classes, accuracy with argmax over\n"
                                       "the classes present too), predictions.csv and plots to a report folder.\n\n"
                                       "A head is scored in two modes from one encoder pass: clip alone (adaptation reset\n"
                                       "before each clip) and session (each speaker one conversation, clips in a shuffled\n"
                                       "order fixed by --seed, judged with that speaker's earlier clips only). --session makes\n"
                                       "the session numbers the headline; both are in metrics.json under \"modes\".\n\n"
                                       "Unlabelled clips (a manifest row with an empty emotion, kept whatever --speakers says, or\n"
                                       "--narration) are scored as 'should read as neutral or uncertain': the report gives the\n"
                                       "share that did.",
                           epilog="examples:\n  subtone eval emotion ../shared/data/emotion/manifest.csv --model emotion-whisper-base --session\n"
                                  "  subtone eval emotion ../shared/data/emotion/manifest-ko.csv --speakers all --session\n"
                                  "  subtone eval emotion --narration --session   # LJSpeech narration of asr-dev only",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path, nargs="?", metavar="MANIFEST",
                   help="manifest.csv (columns path, dataset, speaker, emotion; an empty emotion = unlabelled)")
    p.add_argument("--model", help="manifest model name in models.dir, .onnx file or run model.pt (default: emotion.model)")
    p.add_argument("--speakers", choices=("auto", "test", "all"), default="auto",
                   help="which clips: held-out test speakers, all, or auto (test if the manifest shares speakers with the split)")
    p.add_argument("--session", action="store_true",
                   help="headline numbers from session mode (each speaker's clips one conversation; models that adapt)")
    p.add_argument("--seed", type=int, default=0, help="order of each speaker's clips in session mode (default: %(default)s)")
    p.add_argument("--narration", action="store_const", const=DEFAULT_NARRATION,
                   help=f"also score the unlabelled LJ (LJSpeech) narration clips of {DEFAULT_NARRATION}")
    p.add_argument("--out", type=Path, help="report folder (default: runs/eval-emotion-<time>)")
    p.set_defaults(func=_eval)


# Settings first: a broken --config file is reported at once, not after the torch import.
def _export(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.encoder or (args.run and (args.run / "head.npz").is_file()):
        from subtone.export.emotion import head_recipe

        return head_recipe.export_cli(args, settings.models_dir(), RUNS)
    from subtone.export.emotion import onnx_export

    return onnx_export.cli(args, settings)


def _train(args: argparse.Namespace) -> int:
    settings = settings_from_args(args) if args.config or args.encoder else None
    args.epochs, args.members = recipe_sizes(args)
    if args.encoder:
        from subtone.export.emotion import head_recipe

        return head_recipe.train_cli(args, settings.models_dir(), args.manifest.parent.parent, RUNS)
    from subtone.export.emotion import train

    return train.cli(args)


def _eval(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    from subtone.export.emotion import evaluate

    return evaluate.cli(args, settings)
