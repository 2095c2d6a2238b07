"""The prototype's emotion model, reproduced as described, so ours has a fair starting point.

Features (per clip): audio at 22.05 kHz, trimmed at top_db 25, zero-padded or cut to 180,000 samples;
ZCR, RMS and 13 MFCC with frame 2048 / hop 512 → 352 frames × 15. Model: LSTM 512 → LSTM 512 →
LSTM 256, last frame → linear 6. Only the training length is ours: it is time-boxed (see `train`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

SR = 22_050
FRAME = 2048
HOP = 512
TOP_DB = 25
LENGTH = 180_000


def features(audio16k: np.ndarray) -> np.ndarray:
    """(352, 15) float32: ZCR, RMS, 13 MFCC per frame, exactly the prototype's recipe."""
    import librosa

    y = librosa.resample(np.asarray(audio16k, dtype=np.float32), orig_sr=16_000, target_sr=SR)
    if y.size and np.abs(y).max() > 0:
        y, _ = librosa.effects.trim(y, top_db=TOP_DB)
    y = np.pad(y, (0, LENGTH - y.size)) if y.size < LENGTH else y[:LENGTH]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=FRAME, hop_length=HOP)
    rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=FRAME, hop_length=HOP)
    return np.concatenate([zcr, rms, mfcc], axis=0).T.astype(np.float32)


class BaselineLSTM(nn.Module):
    def __init__(self, n_features: int = 15, n_classes: int = 6) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(n_features, 512, batch_first=True)
        self.lstm2 = nn.LSTM(512, 512, batch_first=True)
        self.lstm3 = nn.LSTM(512, 256, batch_first=True)
        self.out = nn.Linear(256, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(x)
        x, _ = self.lstm3(x)
        return self.out(x[:, -1])


@dataclass(frozen=True)
class BaselineConfig:
    batch_size: int = 32
    lr: float = 1e-3
    max_epochs: int = 3
    budget_s: float = 900.0
    """Wall-clock cap on training; the prototype needed ~520 s/epoch on an unloaded core."""
    eval_every: int = 25
    """Batches between validation checks (the best validation state is kept)."""
    seed: int = 0


def feature_matrix(waves: Sequence[np.ndarray], gain_db: float = 0.0, progress: bool = False) -> np.ndarray:
    from tqdm import tqdm

    g = 10 ** (gain_db / 20)
    return np.stack([features(w * g) for w in tqdm(waves, desc=f"baseline features {gain_db:+g} dB",
                                                    disable=not progress, leave=False)])


def predict_proba(model: BaselineLSTM, feats: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            out.append(torch.softmax(model(torch.from_numpy(feats[i:i + batch])), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 6), np.float32)


def train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          cfg: BaselineConfig, on_progress: Callable[[str], None] | None = None) -> tuple[BaselineLSTM, dict]:
    """Adam on cross-entropy until `max_epochs` or `budget_s`, keeping the best validation accuracy."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = BaselineLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best = (-1.0, {k: v.clone() for k, v in model.state_dict().items()})
    history = []
    t0 = time.perf_counter()
    steps = 0
    stopped = "max_epochs"
    per_epoch = int(np.ceil(len(x_train) / cfg.batch_size))
    for epoch in range(cfg.max_epochs):
        order = rng.permutation(len(x_train))
        bar = tqdm(range(per_epoch), desc=f"baseline epoch {epoch + 1}", leave=False)
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            model.train()
            loss = nn.functional.cross_entropy(model(torch.from_numpy(x_train[idx])), torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
            last = b == per_epoch - 1
            over = time.perf_counter() - t0 > cfg.budget_s
            if steps % cfg.eval_every == 0 or last or over:
                val_acc = float((predict_proba(model, x_val).argmax(1) == y_val).mean())
                history.append({"step": steps, "epoch": epoch + b / per_epoch, "val_acc": val_acc,
                                "elapsed_s": round(time.perf_counter() - t0, 1)})
                if val_acc > best[0]:
                    best = (val_acc, {k: v.clone() for k, v in model.state_dict().items()})
            if over:
                stopped = "budget"
                break
        if stopped == "budget":
            break
    model.load_state_dict(best[1])
    info = {"steps": steps, "epochs_done": round(steps / per_epoch, 2), "stopped_by": stopped,
            "train_s": round(time.perf_counter() - t0, 1), "best_val_acc": best[0], "history": history}
    return model, info
