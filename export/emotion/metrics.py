"""Classification metrics and the gain-stability figure, in plain numpy."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(axis=0), out=np.zeros_like(tp), where=cm.sum(axis=0) > 0)
    recall = np.divide(tp, cm.sum(axis=1), out=np.zeros_like(tp), where=cm.sum(axis=1) > 0)
    denom = precision + recall
    return np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)


def summary(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (over classes present in y_true), per-class F1 and the confusion matrix."""
    cm = confusion(y_true, y_pred, len(labels))
    f1 = per_class_f1(cm)
    present = cm.sum(axis=1) > 0
    return {
        "n": int(cm.sum()),
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_f1": {label: round(float(v), 4) for label, v in zip(labels, f1)},
        "confusion": cm.tolist(),
    }


def gain_stability(predictions: dict[float, np.ndarray], gains: Sequence[float]) -> float:
    """Share of clips whose predicted class is identical at every gain in `gains`."""
    stack = np.stack([predictions[g] for g in gains])
    return float((stack == stack[0]).all(axis=0).mean())
