"""`subtone eval emotion [MANIFEST] [--narration]`: scores an emotion model as the runtime runs it (the
head through HeadEmotionRecognizer.classify, per clip or per speaker session; the CNN's ONNX graph)
or a run's model.pt, and writes metrics.json, predictions.csv and plots (eval_report)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from subtone.config import Settings
from subtone.export.emotion.cli import RUNS
from subtone.export.emotion.data import SPLIT_FILE, Clip, load_clip_audio, load_split
from subtone.export.emotion import eval_report
from subtone.export.emotion.eval_metrics import positions, session_order
from subtone.export.emotion.eval_scoring import (NARRATION_SPEAKER, EvalClip, Scorer, head_scorer, load_eval_manifest,
                                                 narration_clips, waveform_scorer)
from subtone.export.emotion.report import GAINS_DB, Predictor


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


def select_clips(clips: Sequence[Clip | EvalClip], speakers: str, split_path: Path = SPLIT_FILE) -> tuple[list, str]:
    """'test': the split's held-out speakers; 'all': every clip; 'auto': test if the manifest shares speakers
    with the split (so training speakers are never scored), else all."""
    if speakers == "all" or not split_path.is_file():
        return list(clips), "all clips"
    split = load_split(split_path)
    known = set(split.train) | set(split.val) | set(split.test)
    if speakers == "auto" and not any(c.speaker in known for c in clips):
        return list(clips), "all clips (no speaker of the training split)"
    return split.part(clips, "test"), f"held-out speakers {', '.join(split.test)}"


def resolve_scorer(spec: str | None, settings: Settings) -> Scorer:
    """resolve_model's models, each judged as the runtime judges it: a head entry ("emotion-head")
    through HeadEmotionRecognizer.classify with its own encoder; a waveform model as before."""
    from subtone.service.models.registry import load_model

    threshold = settings.emotion.min_confidence
    if spec and spec.endswith((".pt", ".onnx")):
        return waveform_scorer(*resolve_model(spec, settings), threshold)
    entry = load_model(settings.models_dir(), spec or settings.emotion.model)
    if entry.family == "emotion-head":
        return head_scorer(entry, settings)
    return waveform_scorer(*resolve_model(entry.name, settings), threshold)


def manifest_clips(path: Path, speakers: str) -> tuple[list[EvalClip], list[str]]:
    """A manifest's labelled clips per `speakers` (select_clips), then its unlabelled ones (all of
    them: they have no label a model could have learnt)."""
    rows = load_eval_manifest(path)
    labelled = [c for c in rows if c.truth]
    unlabelled = [c for c in rows if not c.truth]
    chosen, what = select_clips(labelled, speakers) if labelled else ([], None)
    return chosen + unlabelled, [w for w in (what, unlabelled and f"{len(unlabelled)} unlabelled") if w]


def chosen_clips(args: argparse.Namespace) -> tuple[list[EvalClip], str]:
    """MANIFEST's clips plus --narration's unlabelled ones, and what they are in words."""
    from subtone.service.errors import SubtoneError

    if args.manifest is None and args.narration is None:
        raise SubtoneError("nothing to score: give a MANIFEST, --narration, or both")
    clips, what = manifest_clips(args.manifest, args.speakers) if args.manifest is not None else ([], [])
    if args.narration is not None:
        clips += narration_clips(args.narration)
        what.append(f"{NARRATION_SPEAKER} narration of {args.narration} (unlabelled)")
    return clips, " + ".join(what)


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """`subtone eval emotion` (options: subtone.export.emotion.cli)."""
    clips, what = chosen_clips(args)
    scorer = resolve_scorer(args.model, settings)
    primary = "session" if args.session and scorer.adapts else "alone"
    out = args.out or RUNS / f"eval-emotion-{time.strftime('%Y%m%d-%H%M%S')}"
    waves = load_clip_audio(clips, trim=False, progress=True)
    speakers = [c.speaker for c in clips]
    order = session_order(speakers, args.seed)
    runs = {g: scorer.run(waves, speakers, order, g) for g in GAINS_DB}
    result = eval_report.build(clips, runs, primary, scorer.threshold, GAINS_DB)
    result.update(model=scorer.name, clips=what, n_clips=len(clips), seed=args.seed,
                  adapts=scorer.adapts, session_requested=bool(args.session))
    if args.session and not scorer.adapts:
        result["mode_description"] += " (--session asked for it, but this model does not adapt: the same numbers)"
    out.mkdir(parents=True, exist_ok=True)
    place = positions(order, speakers) if primary == "session" else None
    eval_report.write_predictions(out / "predictions.csv", clips, runs[0.0], primary, scorer.threshold, place)
    eval_report.write(result, out, f"{scorer.name}, {what}")
    print(headline(result, len(clips), out))
    return 0


def headline(result: dict, n: int, out: Path) -> str:
    """One line: mode, accuracy and macro-F1 (labelled), narration share, gain stability, folder."""
    parts = [f"{result['model']} on {n} clips ({result['clips']}), {result['mode']}"]
    if "accuracy" in result:
        point = result["at_threshold"]
        parts.append(f"acc {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}, "
                     f"shown {point['coverage']:.0%} at {point['threshold']:.2f}")
    if "narration" in result:
        parts.append(f"narration neutral or uncertain {result['narration']['neutral_or_uncertain']:.3f}")
    parts.append(f"same class at {'/'.join(f'{g:+g}' for g in GAINS_DB)} dB: {result['gain_sweep']['stable_share']:.3f}")
    return f"{parts[0]}: {'; '.join(parts[1:])} → {out}"
