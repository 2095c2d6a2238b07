"""Emotion hysteresis for partial captions: the color changes only when the evidence does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class HysteresisParams:
    smoothing: float = 0.5
    """Weight of the newest scores in the running average (1.0 = no smoothing)."""
    margin: float = 0.15
    """A new label must beat the shown label's smoothed probability by this much…"""
    hold_updates: int = 2
    """…for this many consecutive updates before the shown label changes."""


class EmotionHysteresis:
    """Feed each utterance's emotion scores as they update; read the label to show."""

    def __init__(self, params: HysteresisParams = HysteresisParams()) -> None:
        self._p = params
        self._avg: dict[str, float] = {}
        self._shown: str | None = None
        self._challenger: str | None = None
        self._streak = 0

    def reset(self) -> None:
        self._avg, self._shown, self._challenger, self._streak = {}, None, None, 0

    @property
    def label(self) -> str | None:
        return self._shown

    def update(self, scores: Mapping[str, float]) -> str:
        a = self._p.smoothing
        if not self._avg:
            self._avg = dict(scores)
        else:
            self._avg = {k: (1 - a) * self._avg.get(k, 0.0) + a * v for k, v in scores.items()}
        best = max(self._avg, key=self._avg.__getitem__)
        if self._shown is None:
            self._shown = best
        elif best != self._shown and self._avg[best] - self._avg.get(self._shown, 0.0) >= self._p.margin:
            self._streak = self._streak + 1 if best == self._challenger else 1
            self._challenger = best
            if self._streak >= self._p.hold_updates:
                self._shown, self._challenger, self._streak = best, None, 0
        else:
            self._challenger, self._streak = None, 0
        return self._shown
