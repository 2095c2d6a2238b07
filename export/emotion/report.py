"""Evaluation reports: metrics JSON, confusion-matrix PNG, gain sweep with per-gain class histograms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from subtone.export.emotion.data import LABELS, Clip
from subtone.export.emotion.metrics import gain_stability, summary

GAINS_DB: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0)

# (waveforms at 16 kHz, gain in dB) → probabilities [N, 6]; gain is pure scaling, no clipping.
Predictor = Callable[[Sequence[np.ndarray], float], np.ndarray]


def evaluate(predict: Predictor, clips: Sequence[Clip], waves: Sequence[np.ndarray],
             gains: Sequence[float] = GAINS_DB) -> dict:
    """Held-out metrics at 0 dB, and the gain sweep's stability and per-gain prediction histograms."""
    y_true = np.array([c.target for c in clips])
    preds = {g: predict(waves, g).argmax(axis=1) for g in gains}
    result = summary(y_true, preds[0.0] if 0.0 in preds else preds[gains[0]], LABELS)
    result["gain_sweep"] = {
        "gains_db": list(gains),
        "stable_share": gain_stability(preds, gains),
        "accuracy": {f"{g:+g}": float((preds[g] == y_true).mean()) for g in gains},
        "histogram": {f"{g:+g}": np.bincount(preds[g], minlength=len(LABELS)).tolist() for g in gains},
    }
    by_dataset = {}
    for ds in sorted({c.dataset for c in clips}):
        mask = np.array([c.dataset == ds for c in clips])
        by_dataset[ds] = {k: v for k, v in summary(y_true[mask], preds[0.0][mask], LABELS).items()
                          if k in ("n", "accuracy", "macro_f1")} if 0.0 in preds else {}
    result["by_dataset"] = by_dataset
    return result


def write_report(result: dict, out_dir: Path, title: str) -> list[Path]:
    """metrics.json, confusion.png and gain_sweep.png in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "metrics.json", out_dir / "confusion.png", out_dir / "gain_sweep.png"]
    paths[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot_confusion(np.array(result["confusion"]), title, result, paths[1])
    _plot_gain_sweep(result["gain_sweep"], title, paths[2])
    return paths


def _plot_confusion(cm: np.ndarray, title: str, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=45)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_title(f"{title}\nacc {result['accuracy']:.1%}, macro-F1 {result['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_gain_sweep(sweep: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gains = list(sweep["histogram"])
    width = 0.8 / len(gains)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(LABELS))
    for k, g in enumerate(gains):
        ax.bar(x + k * width - 0.4 + width / 2, sweep["histogram"][g], width, label=f"{g} dB")
    ax.set_xticks(x, LABELS)
    ax.set_ylabel("predictions")
    ax.legend(fontsize=8)
    ax.set_title(f"{title}: predicted class per input gain\nsame class at all gains: {sweep['stable_share']:.1%}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
