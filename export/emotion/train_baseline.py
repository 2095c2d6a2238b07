"""Trains and scores the reproduced prototype on our speaker split (`subtone train emotion --baseline`)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from subtone.export.emotion import baseline
from subtone.export.emotion.data import Clip, load_clip_audio, load_manifest, split_for
from subtone.export.emotion.report import GAINS_DB, evaluate, write_report

log = logging.getLogger(__name__)


def _predictor(model: baseline.BaselineLSTM):
    cache: dict[float, np.ndarray] = {}

    def predict(waves: Sequence[np.ndarray], gain_db: float) -> np.ndarray:
        if gain_db not in cache:
            cache[gain_db] = baseline.feature_matrix(waves, gain_db, progress=True)
        return baseline.predict_proba(model, cache[gain_db])

    return predict


_FEATURES: dict[Path, np.ndarray] = {}


def _features(clips: Sequence[Clip]) -> np.ndarray:
    """0 dB features, computed once per clip per process (librosa is the slow part)."""
    todo = [c for c in clips if c.path not in _FEATURES]
    if todo:
        for c, f in zip(todo, baseline.feature_matrix(load_clip_audio(todo, trim=False, progress=True), progress=True)):
            _FEATURES[c.path] = f
    return np.stack([_FEATURES[c.path] for c in clips])


def _fit(train: Sequence[Clip], val: Sequence[Clip], cfg: baseline.BaselineConfig):
    x_tr = _features(train)
    x_va = _features(val)
    y_tr = np.array([c.target for c in train])
    y_va = np.array([c.target for c in val])
    return baseline.train(x_tr, y_tr, x_va, y_va, cfg)


def run(manifest: Path, run_dir: Path, cfg: baseline.BaselineConfig, loco: bool = False,
        loco_budget_s: float = 300.0) -> dict:
    torch.manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"model": "baseline", **asdict(cfg)}, indent=2) + "\n")
    clips = load_manifest(manifest)
    split = split_for(clips)
    t0 = time.perf_counter()
    model, info = _fit(split.part(clips, "train"), split.part(clips, "val"), cfg)
    torch.save(model.state_dict(), run_dir / "baseline.pt")
    test = split.part(clips, "test")
    result = evaluate(_predictor(model), test, load_clip_audio(test, trim=False), GAINS_DB)
    result["training"] = info
    paths = write_report(result, run_dir / "test", "baseline (prototype LSTM), held-out speakers")
    log.info("baseline on held-out speakers: acc %.3f, macro-F1 %.3f, gain-stable %.3f (report: %s)",
             result["accuracy"], result["macro_f1"], result["gain_sweep"]["stable_share"], paths[0])
    summary = {"test": result, "total_s": round(time.perf_counter() - t0, 1)}
    if loco:
        summary["loco"] = {}
        for src, dst in (("ravdess", "tess"), ("tess", "ravdess")):
            src_clips = [c for c in clips if c.dataset == src]
            val = split.part(src_clips, "val") or src_clips[::10]
            train = [c for c in src_clips if c not in set(val)]
            small = baseline.BaselineConfig(**{**asdict(cfg), "budget_s": loco_budget_s})
            m, inf = _fit(train, val, small)
            dst_clips = [c for c in clips if c.dataset == dst]
            res = evaluate(_predictor(m), dst_clips, load_clip_audio(dst_clips, trim=False), (0.0,))
            res["training"] = inf
            write_report(res, run_dir / f"loco_{src}_to_{dst}", f"baseline {src} → {dst}")
            summary["loco"][f"{src}_to_{dst}"] = {k: res[k] for k in ("n", "accuracy", "macro_f1")}
            log.info("baseline LOCO %s→%s: acc %.3f, macro-F1 %.3f", src, dst, res["accuracy"], res["macro_f1"])
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
