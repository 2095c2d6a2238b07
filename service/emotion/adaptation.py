"""Adaptation to the voice without labels: each audio source's running feature statistics.

Emotion is heard relative to a voice's own habits (a low voice is not sad; a loud one is not
angry). The head therefore sees an utterance's pooled encoder features standardised by the
statistics of what this source said *before* it, never after (causal). Until a session has
said much, its statistics lean on the training set's (the prior): after n utterances the
session's own weigh n / (n + prior_weight). Older utterances fade with `memory`, so a new
speaker on the same source takes over within a few dozen utterances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdaptationParams:
    prior_weight: float = 2.0
    """Pseudo-utterances of the training statistics: the warm-up. Small: on the validation actors
    a voice's own statistics helped from its second utterance on (docs/benchmarks.md)."""
    memory: float = 64.0
    """Effective number of recent utterances the session statistics remember (exponential decay)."""


@dataclass(frozen=True)
class FeatureStats:
    mean: np.ndarray
    std: np.ndarray


def blend(prior: FeatureStats, mean: np.ndarray, var: np.ndarray, count: float, prior_weight: float) -> FeatureStats:
    """Session statistics from `count` utterances shrunk towards the prior (a mixture's moments)."""
    if count <= 0:
        return prior
    w = count / (count + prior_weight)
    mixed_mean = w * mean + (1 - w) * prior.mean
    mixed_var = w * var + (1 - w) * prior.std**2 + w * (1 - w) * (mean - prior.mean) ** 2
    return FeatureStats(mixed_mean.astype(np.float32), np.sqrt(mixed_var + 1e-6).astype(np.float32))


class SessionAdaptation:
    """One source's statistics: read `stats()` to judge an utterance, then `observe()` it."""

    def __init__(self, prior: FeatureStats, params: AdaptationParams = AdaptationParams()) -> None:
        self._prior = prior
        self._p = params
        self._decay = 1.0 - 1.0 / params.memory
        self._weight = 0.0
        self._sum = np.zeros_like(prior.mean, dtype=np.float64)
        self._sum_sq = np.zeros_like(prior.mean, dtype=np.float64)

    @property
    def count(self) -> float:
        """Effective number of utterances observed (decayed)."""
        return self._weight

    def stats(self) -> FeatureStats:
        if self._weight <= 0:
            return self._prior
        mean = self._sum / self._weight
        var = np.maximum(self._sum_sq / self._weight - mean**2, 0.0)
        return blend(self._prior, mean, var, self._weight, self._p.prior_weight)

    def observe(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64).reshape(-1)
        self._weight = self._decay * self._weight + 1.0
        self._sum = self._decay * self._sum + x
        self._sum_sq = self._decay * self._sum_sq + x * x

    def reset(self) -> None:
        self._weight = 0.0
        self._sum[:] = 0.0
        self._sum_sq[:] = 0.0
