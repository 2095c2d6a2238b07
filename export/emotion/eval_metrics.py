"""The pure parts of `subtone eval emotion`: session order, accuracy-coverage, per-corpus metrics,
restricted argmax and the narration figure. Plain numpy; no model is needed to call them."""

from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np

from subtone.export.emotion.data import LABELS
from subtone.export.emotion.metrics import gain_stability, summary

COVERAGE_STEPS: tuple[int, ...] = tuple(range(10, 101, 10))
"""Coverage levels (percent of clips, most confident first) of the accuracy-coverage curve."""
NEUTRAL = LABELS.index("neutral")


def session_order(speakers: Sequence[str], seed: int = 0) -> list[int]:
    """Clip indices as conversations: speakers in sorted order, each speaker's clips together, in
    an order shuffled by `seed` (the same seed, the same order)."""
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(i)
    order: list[int] = []
    for speaker in sorted(groups):
        clips = groups[speaker][:]
        rng.shuffle(clips)
        order += clips
    return order


def positions(order: Sequence[int], speakers: Sequence[str]) -> list[int]:
    """Each clip's place in its speaker's conversation (0: judged first, with the prior only)."""
    seen: dict[str, int] = {}
    place = [0] * len(speakers)
    for i in order:
        place[i] = seen.get(speakers[i], 0)
        seen[speakers[i]] = place[i] + 1
    return place


def coverage_curve(confidence: np.ndarray, correct: np.ndarray,
                   steps: Sequence[int] = COVERAGE_STEPS) -> list[dict]:
    """Accuracy of the k% most confident clips, for each k in `steps` (ties keep clip order)."""
    confidence = np.asarray(confidence, dtype=float)
    ranked = np.asarray(correct, dtype=bool)[np.argsort(-confidence, kind="stable")]
    curve = []
    for k in steps:
        n = max(1, math.ceil(len(ranked) * k / 100)) if len(ranked) else 0
        curve.append({"coverage": k / 100, "n": n,
                      "accuracy": float(ranked[:n].mean()) if n else None,
                      "min_confidence": float(np.sort(confidence)[::-1][n - 1]) if n else None})
    return curve


def at_threshold(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict:
    """What the runtime shows at `threshold`: a colour when the top probability reaches it."""
    shown = np.asarray(confidence, dtype=float) >= threshold
    correct = np.asarray(correct, dtype=bool)
    return {"threshold": float(threshold), "n": int(shown.size), "shown": int(shown.sum()),
            "coverage": float(shown.mean()) if shown.size else 0.0,
            "accuracy_shown": float(correct[shown].mean()) if shown.any() else None}


def per_corpus(datasets: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict]:
    """Clips, accuracy and macro-F1 of each corpus (the manifest's dataset column)."""
    datasets = np.asarray(datasets)
    out = {}
    for name in sorted(set(datasets.tolist())):
        mask = datasets == name
        s = summary(np.asarray(y_true)[mask], np.asarray(y_pred)[mask], LABELS)
        out[name] = {"n": s["n"], "accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
    return out


def restricted_argmax(probs: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The most probable class among `classes` only (e.g. the 4 a Korean manifest has)."""
    classes = np.asarray(sorted(classes))
    return classes[np.asarray(probs)[:, classes].argmax(axis=1)]


def labelled_summary(y_true: np.ndarray, probs: np.ndarray, datasets: Sequence[str], threshold: float) -> dict:
    """Accuracy, macro-F1, per-class F1, confusion, per corpus, accuracy-coverage and the threshold
    point; plus the same over the classes present when fewer than all are."""
    y_pred = probs.argmax(axis=1)
    confidence, correct = probs.max(axis=1), y_pred == y_true
    result = summary(y_true, y_pred, LABELS)
    result["by_dataset"] = per_corpus(datasets, y_true, y_pred)
    result["coverage_curve"] = coverage_curve(confidence, correct)
    result["at_threshold"] = at_threshold(confidence, correct, threshold)
    present = sorted(set(np.asarray(y_true).tolist()))
    if len(present) < len(LABELS):
        restricted = restricted_argmax(probs, present)
        s = summary(y_true, restricted, LABELS)
        result["restricted"] = {"classes": [LABELS[c] for c in present], "accuracy": s["accuracy"],
                                "macro_f1": s["macro_f1"], "per_class_f1": s["per_class_f1"]}
    return result


def narration_summary(probs: np.ndarray, threshold: float) -> dict:
    """Unlabelled narration should read as neutral or uncertain: the share that did, and what else was shown."""
    y_pred = probs.argmax(axis=1)
    uncertain = probs.max(axis=1) < threshold
    neutral = y_pred == NEUTRAL
    n = max(len(y_pred), 1)
    shown = np.bincount(y_pred[~uncertain], minlength=len(LABELS))
    return {"n": int(len(y_pred)), "neutral_or_uncertain": float((neutral | uncertain).sum() / n),
            "neutral": float(neutral.sum() / n), "uncertain": float(uncertain.sum() / n),
            "shown_as": dict(zip(LABELS, shown.tolist())), "threshold": float(threshold)}


def intensity_accuracy(truth: Sequence[str], p_strong: np.ndarray, strong_at: float = 0.5) -> dict | None:
    """Normal vs strong (RAVDESS's intensity column) against P(strong) >= `strong_at`, over clips that
    have both; None when none has."""
    truth, p_strong = np.asarray(truth), np.asarray(p_strong, dtype=float)
    has = np.isin(truth, ("normal", "strong")) & ~np.isnan(p_strong)
    if not has.any():
        return None
    right = (p_strong[has] >= strong_at) == (truth[has] == "strong")
    return {"n": int(has.sum()), "accuracy": float(right.mean()), "strong_at": strong_at}


def gain_sweep(preds: dict[float, np.ndarray], y_true: np.ndarray, gains: Sequence[float]) -> dict:
    """Share of clips with the same class at every gain; accuracy (labelled clips) and histogram per gain."""
    labelled = np.asarray(y_true) >= 0
    return {
        "gains_db": list(gains),
        "stable_share": gain_stability(preds, gains),
        "accuracy": {f"{g:+g}": float((preds[g][labelled] == y_true[labelled]).mean()) if labelled.any() else None
                     for g in gains},
        "histogram": {f"{g:+g}": np.bincount(preds[g], minlength=len(LABELS)).tolist() for g in gains},
    }
