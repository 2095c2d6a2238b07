"""The `subtone eval emotion` report: metrics.json, predictions.csv and plots (confusion, gain sweep,
accuracy-coverage) from the model's scores at every gain."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from subtone.export.emotion import eval_metrics as em
from subtone.export.emotion.data import LABELS
from subtone.export.emotion.eval_scoring import EvalClip, Scores
from subtone.export.emotion.report import _plot_confusion, _plot_gain_sweep
from subtone.service.emotion.recognizer import STRONG_AT

MODE_TEXT = {
    "session": "session: each speaker's clips are one conversation (source = speaker, seeded shuffled order); "
               "a clip is judged with the statistics of that speaker's earlier clips",
    "alone": "alone: every clip judged by itself (a fresh source per clip, as after a reset: the prior's statistics)",
}
SWEEP_TEXT = {
    "session": "each gain is its own session pass: every clip of the conversation at that gain, in the same "
               "order, so each level's clip is judged at the same session position",
    "alone": "each clip alone at each gain",
}


def mode_summary(clips: Sequence[EvalClip], scores: Scores, threshold: float) -> dict:
    """Labelled metrics (if any labelled clip) and the narration figure (if any unlabelled clip)."""
    y_true = np.array([c.target for c in clips])
    labelled = y_true >= 0
    out: dict = {"no_result": int((~scores.judged).sum())}
    if labelled.any():
        datasets = [c.dataset for c, keep in zip(clips, labelled) if keep]
        out.update(em.labelled_summary(y_true[labelled], scores.probs[labelled], datasets, threshold))
        intensity = em.intensity_accuracy([c.truth_intensity for c in clips], scores.intensity, STRONG_AT)
        if intensity:
            out["intensity"] = intensity
    if (~labelled).any():
        out["narration"] = em.narration_summary(scores.probs[~labelled], threshold)
    return out


def build(clips: Sequence[EvalClip], runs: Mapping[float, Mapping[str, Scores]], primary: str,
          threshold: float, gains: Sequence[float]) -> dict:
    """The report: the primary mode's metrics at top level, every mode under "modes", the gain sweep."""
    at_zero = runs[0.0]
    result = {"mode": primary, "mode_description": MODE_TEXT[primary], "threshold": threshold}
    result["modes"] = {mode: mode_summary(clips, scores, threshold) for mode, scores in at_zero.items()}
    result.update(result["modes"][primary])
    y_true = np.array([c.target for c in clips])
    preds = {g: runs[g][primary].probs.argmax(axis=1) for g in gains}
    result["gain_sweep"] = em.gain_sweep(preds, y_true, gains)
    result["gain_sweep"]["mode"] = SWEEP_TEXT[primary]
    return result


PREDICTION_COLUMNS = ("path", "dataset", "speaker", "position", "truth", "truth_intensity", "predicted",
                      "probability", "shown", "intensity")


def write_predictions(path: Path, clips: Sequence[EvalClip], modes: Mapping[str, Scores], primary: str,
                      threshold: float, place: Sequence[int] | None) -> None:
    """One row per clip at 0 dB in the `primary` mode: shown = 1 when the top probability reaches the
    threshold (a colour is shown), 0 when the runtime abstains, blank when the model gave no result
    (too short or silent); position = its place in its speaker's session (session mode). The other
    mode's prediction and probability, if any, as extra columns."""
    others = [m for m in modes if m != primary]
    columns = list(PREDICTION_COLUMNS) + [f"{k}_{m}" for m in others for k in ("predicted", "probability")]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for i, clip in enumerate(clips):
            writer.writerow(_row(i, clip, modes[primary], threshold, place) + [x for m in others for x in _pred(modes[m], i)])


def _pred(scores: Scores, i: int) -> list:
    return [LABELS[int(scores.probs[i].argmax())], f"{scores.probs[i].max():.4f}"] if scores.judged[i] else ["", ""]


def _row(i: int, clip: EvalClip, scores: Scores, threshold: float, place: Sequence[int] | None) -> list:
    judged = bool(scores.judged[i])
    shown = ("1" if scores.probs[i].max() >= threshold else "0") if judged else ""
    intensity = "" if np.isnan(scores.intensity[i]) else f"{scores.intensity[i]:.4f}"
    return [str(clip.path), clip.dataset, clip.speaker, "" if place is None else place[i], clip.truth,
            clip.truth_intensity, *_pred(scores, i), shown, intensity]


def write(result: dict, out_dir: Path, title: str) -> list[Path]:
    """metrics.json and the plots (confusion and coverage only when clips are labelled)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "metrics.json", out_dir / "gain_sweep.png"]
    paths[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot_gain_sweep(result["gain_sweep"], f"{title} [{result['mode']}]", paths[1])
    if "confusion" in result:
        paths += [out_dir / "confusion.png", out_dir / "coverage.png"]
        _plot_confusion(np.array(result["confusion"]), f"{title} [{result['mode']}]", result, paths[2])
        plot_coverage(result, title, paths[3])
    return paths


def plot_coverage(result: dict, title: str, path: Path) -> None:
    """Accuracy of the most confident k% per mode, with the threshold's (coverage, accuracy) point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for mode, summary in result["modes"].items():
        if "coverage_curve" not in summary:
            continue
        curve = summary["coverage_curve"]
        line, = ax.plot([p["coverage"] for p in curve], [p["accuracy"] for p in curve], marker="o", label=mode)
        point = summary["at_threshold"]
        if point["accuracy_shown"] is not None:
            ax.plot([point["coverage"]], [point["accuracy_shown"]], marker="*", markersize=12, color=line.get_color(),
                    label=f"{mode} at threshold {point['threshold']:.2f}")
    ax.set_xlabel("coverage (most confident share of clips)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\naccuracy-coverage (star: what min_confidence shows)", fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
