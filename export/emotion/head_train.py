"""Training the emotion head on pooled Whisper encoder features (PyTorch, the `train` extra).

The head: dropout → Linear(features, 256) → GELU → Linear(256, 6 emotions) and Linear(256, 1
intensity). Each corpus weighs the same whatever its size, and every clip is held to all six
classes: masking a corpus's missing classes out of its loss (Korean has no fear or disgust) was
measured to let the head call Korean speech fear or disgust at will (docs/benchmarks.md).

Inputs are standardised the way the runtime does it (subtone.service.emotion.adaptation): by
the statistics of a random 0–64 earlier utterances of the same speaker, shrunk to the training
statistics, so one head serves both a fresh session and a long one. With `other_level`, half the
clips of each epoch are seen at another loudness, so the level is not a cue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from subtone.service.emotion.adaptation import AdaptationParams, FeatureStats, SessionAdaptation, blend
from subtone.service.events import EMOTIONS


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 40
    seeds: int = 2
    """Ensemble members; their logits are averaged (one wider layer in the exported graph)."""
    hidden: int = 128
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-3
    input_noise: float = 0.1
    label_smoothing: float = 0.05
    intensity_weight: float = 0.5
    mask_missing: bool = False
    """Drop a corpus's missing classes (Korean: fear, disgust) from its softmax. Measured worse:
    off by default (see the module docstring)."""


@dataclass(frozen=True)
class HeadWeights:
    """One or more members' weights, stacked: w1 [F, H·M], b1 [H·M], w2 [H·M, 6], b2 [6],
    w3 [H·M, 1], b3 [1]. Logits = GELU(x·w1 + b1)·w2 + b2 is the members' mean already."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray

    def forward(self, x: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [N, 6], P(strong) [N]) in numpy: the reference the ONNX graph is held to."""
        h = x @ self.w1 + self.b1
        h = 0.5 * h * (1 + _erf(h / math.sqrt(2)))
        return softmax((h @ self.w2 + self.b2) / temperature), 1 / (1 + np.exp(-(h @ self.w3 + self.b3)[:, 0]))


_erf = np.vectorize(math.erf, otypes=[np.float64])  # numpy has no erf; GELU's exact form needs it


def stack_members(members: list[dict[str, np.ndarray]]) -> HeadWeights:
    """Members' weights → one head whose logits are their mean (block-diagonal second layer)."""
    m = len(members)
    return HeadWeights(
        w1=np.concatenate([p["w1"] for p in members], axis=1),
        b1=np.concatenate([p["b1"] for p in members]),
        w2=np.concatenate([p["w2"] for p in members], axis=0) / m,
        b2=np.mean([p["b2"] for p in members], axis=0),
        w3=np.concatenate([p["w3"] for p in members], axis=0) / m,
        b3=np.mean([p["b3"] for p in members], axis=0),
    )


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = z / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `y` (grid 0.3–5)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5), 60))
    nll = [-np.log(softmax(logits, t)[np.arange(y.size), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def prior_of(x: np.ndarray) -> FeatureStats:
    return FeatureStats(x.mean(0).astype(np.float32), (x.std(0) + 1e-3).astype(np.float32))


def session_standardised(x: np.ndarray, rows: np.ndarray, speakers: np.ndarray, prior: FeatureStats,
                         adapt: bool, seed: int = 7, params: AdaptationParams = AdaptationParams()) -> np.ndarray:
    """Evaluation inputs: each speaker's clips in a shuffled order, each standardised by what that
    speaker said before it (adapt) or by the training statistics alone."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows.size, x.shape[1]), np.float32)
    pos = {int(i): j for j, i in enumerate(rows)}
    for s in np.unique(speakers[rows]):
        session = SessionAdaptation(prior, params)
        for i in rng.permutation(rows[speakers[rows] == s]):
            st = session.stats() if adapt else prior
            out[pos[int(i)]] = (x[i] - st.mean) / st.std
            session.observe(x[i])
    return out


def _randomly_adapted(x, rows, speakers, prior, rng, prior_weight):
    """Training inputs: each clip standardised by 0–64 random earlier clips of its speaker."""
    out = np.empty((rows.size, x.shape[1]), np.float32)
    for s in np.unique(speakers[rows]):
        perm = rng.permutation(np.flatnonzero(speakers[rows] == s))
        xs = x[rows[perm]].astype(np.float64)
        s1 = np.vstack([np.zeros(xs.shape[1]), np.cumsum(xs, 0)])
        s2 = np.vstack([np.zeros(xs.shape[1]), np.cumsum(xs * xs, 0)])
        seen = np.minimum(np.arange(perm.size), rng.choice([0, 1, 2, 4, 8, 16, 32, 64], perm.size))
        for j, m in enumerate(seen):
            st = prior
            if m:
                mean = (s1[j] - s1[j - m]) / m
                st = blend(prior, mean, np.maximum((s2[j] - s2[j - m]) / m - mean**2, 0), m, prior_weight)
            out[perm[j]] = (xs[j] - st.mean) / st.std
    return out


def train_member(x: np.ndarray, y: np.ndarray, strong: np.ndarray, speakers: np.ndarray, datasets: np.ndarray,
                 train: np.ndarray, prior: FeatureStats, seed: int, cfg: HeadConfig,
                 other_level: np.ndarray | None = None, params: AdaptationParams = AdaptationParams()) -> dict:
    """One member's weights (numpy, w1 [F, H] …) trained on the clips `train`."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    body = nn.Sequential(nn.Dropout(0.2), nn.Linear(x.shape[1], cfg.hidden), nn.GELU(), nn.Dropout(0.3))
    emotion, intensity = nn.Linear(cfg.hidden, len(EMOTIONS)), nn.Linear(cfg.hidden, 1)
    net = nn.ModuleList([body, emotion, intensity])
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    counts = {ds: np.sum(datasets[train] == ds) for ds in np.unique(datasets[train])}
    weight = torch.tensor([1.0 / counts[ds] for ds in datasets[train]], dtype=torch.float32)
    weight = weight / weight.mean()
    yt, st = torch.tensor(y[train]), torch.tensor(strong[train])
    mask = torch.zeros(train.size, len(EMOTIONS), dtype=torch.bool)
    if cfg.mask_missing:
        for ds in counts:
            present = np.isin(np.arange(len(EMOTIONS)), np.unique(y[train][datasets[train] == ds]))
            mask[torch.tensor(datasets[train] == ds)] = torch.tensor(~present)
    for _ in range(cfg.epochs):
        xe = x
        if other_level is not None:
            xe = np.where((rng.random(x.shape[0]) < 0.5)[:, None], other_level, x)
        xb = torch.tensor(_randomly_adapted(xe, train, speakers, prior, rng, params.prior_weight))
        net.train()
        order = torch.randperm(train.size)
        for b in range(0, train.size, cfg.batch):
            j = order[b : b + cfg.batch]
            z = body(xb[j] + cfg.input_noise * torch.randn(j.numel(), x.shape[1]))
            logits = emotion(z).masked_fill(mask[j], -1e4)
            ce = nn.functional.cross_entropy(logits, yt[j], reduction="none", label_smoothing=cfg.label_smoothing)
            loss = (ce * weight[j]).mean()
            has = st[j] >= 0
            if has.any():
                loss = loss + cfg.intensity_weight * nn.functional.binary_cross_entropy_with_logits(
                    intensity(z)[has, 0], st[j][has].float())
            opt.zero_grad()
            loss.backward()
            opt.step()
    lin1 = body[1]
    return {"w1": lin1.weight.detach().numpy().T.copy(), "b1": lin1.bias.detach().numpy().copy(),
            "w2": emotion.weight.detach().numpy().T.copy(), "b2": emotion.bias.detach().numpy().copy(),
            "w3": intensity.weight.detach().numpy().T.copy(), "b3": intensity.bias.detach().numpy().copy()}
