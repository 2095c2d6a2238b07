"""`subtone eval emotion MANIFEST`: scores the ONNX model (as the runtime runs it) or a run's model.pt."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from subtone.config import Settings
from subtone.export.emotion.cli import RUNS
from subtone.export.emotion.data import SPLIT_FILE, Clip, load_clip_audio, load_manifest, load_split
from subtone.export.emotion.report import GAINS_DB, Predictor, evaluate, write_report


def onnx_predictor(onnx_path: Path, threads: int = 0) -> Predictor:
    """Runs the ONNX graph through the runtime's session factory, one clip at a time."""
    from subtone.service.models.onnx_session import create_session

    session, _ = create_session(onnx_path, ("cpu",), threads, label=onnx_path.name)

    def predict(waves: Sequence[np.ndarray], gain_db: float) -> np.ndarray:
        g = np.float32(10 ** (gain_db / 20))
        return np.stack([session.run(None, {"audio": (w * g).astype(np.float32)[None]})[0][0] for w in waves])

    return predict


def torch_predictor(model_pt: Path) -> Predictor:
    from subtone.export.emotion.train import load_trained, predict_proba

    model = load_trained(model_pt)
    return lambda waves, gain_db: predict_proba(model, waves, gain_db)


def resolve_model(spec: str | None, settings: Settings) -> tuple[str, Predictor]:
    """A model name in settings' models folder (default: emotion.model), an .onnx file, or a run's model.pt."""
    from subtone.service.errors import SubtoneError
    from subtone.service.models.registry import load_model

    if spec and spec.endswith(".pt"):
        return spec, torch_predictor(Path(spec))
    if spec and spec.endswith(".onnx"):
        if not Path(spec).is_file():
            raise SubtoneError(f"ONNX model not found: {spec}")
        return spec, onnx_predictor(Path(spec))
    entry = load_model(settings.models_dir(), spec or settings.emotion.model)
    if entry.task != "emotion":
        raise SubtoneError(f"model '{entry.name}' has task '{entry.task}'; expected an emotion model")
    return entry.name, onnx_predictor(entry.path("model"))


def select_clips(clips: Sequence[Clip], speakers: str, split_path: Path = SPLIT_FILE) -> tuple[list[Clip], str]:
    """'test': the split's held-out speakers; 'all': every clip; 'auto': test if the manifest shares speakers
    with the split (so training speakers are never scored), else all."""
    if speakers == "all" or not split_path.is_file():
        return list(clips), "all clips"
    split = load_split(split_path)
    known = set(split.train) | set(split.val) | set(split.test)
    if speakers == "auto" and not any(c.speaker in known for c in clips):
        return list(clips), "all clips (no speaker of the training split)"
    return split.part(clips, "test"), f"held-out speakers {', '.join(split.test)}"


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """`subtone eval emotion` (options: subtone.export.emotion.cli)."""
    clips = load_manifest(args.manifest)
    name, predict = resolve_model(args.model, settings)
    chosen, what = select_clips(clips, args.speakers)
    out = args.out or RUNS / f"eval-emotion-{time.strftime('%Y%m%d-%H%M%S')}"
    result = evaluate(predict, chosen, load_clip_audio(chosen, trim=False, progress=True), GAINS_DB)
    result["model"] = name
    result["clips"] = what
    write_report(result, out, f"{name}, {what}")
    print(f"{name} on {len(chosen)} clips ({what}): acc {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}, "
          f"same class at {'/'.join(f'{g:+g}' for g in GAINS_DB)} dB: {result['gain_sweep']['stable_share']:.3f} → {out}")
    return 0
