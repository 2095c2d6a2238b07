"""`subtone train emotion --encoder whisper-base` and exporting its run: the emotion head on
Whisper base's encoder, from features to a model folder.

Training clips: RAVDESS train actors + TESS + the Korean speakers (every clip whose speaker is
in neither the validation nor the test list of export/emotion/speaker_split.json). The
validation actors choose the temperature (calibration) and the abstention threshold; the test
actors are only scored. Writes runs/emotion-whisper-base-<time>/: head.npz, metrics.json,
predictions.csv (held-out actors and narration).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from subtone.export.emotion.data import SPLIT_FILE
from subtone.export.emotion.encoder_data import NARRATION, Corpus, corpus_rows, extract, select_blocks
from subtone.export.emotion.head_train import (
    HeadConfig,
    HeadWeights,
    fit_temperature,
    prior_of,
    session_standardised,
    softmax,
    stack_members,
    train_member,
)
from subtone.service.emotion.adaptation import FeatureStats
from subtone.service.events import EMOTIONS

log = logging.getLogger(__name__)

LAYERS = (1, 2, 3, 4, 5, 6)
"""Encoder blocks pooled: all of them. The lower blocks carry how a thing is said and transfer
across corpora and languages; the upper ones what is said (docs/benchmarks.md)."""
ENCODER_MODEL = "whisper-base-int8"
"""The speech model whose encoder the head reads; its float32 sibling shares too."""
SHARES_WITH = ("whisper-base-int8", "whisper-base")
NAME = "emotion-whisper-base"
GAIN_RANGE_DB = (-25.0, 10.0)
FEATURES = "level-normalised"
"""Part of the feature caches' names: what the encoder heard (subtone.service.emotion.encoder_features)."""
LICENSE = ("non-commercial, research only (trained on RAVDESS CC BY-NC-SA 4.0, TESS CC BY-NC-ND 4.0 and the "
           "Korean emotiontts corpus, research use only)")


def encoder_path(models_dir: Path) -> Path:
    from subtone.service.models.registry import load_model

    return load_model(models_dir, ENCODER_MODEL).path("encoder")


def features(models_dir: Path, shared: Path, cache_dir: Path, gain_augment: bool, threads: int = 2):
    """(corpus, features at another level or None): every clip's pooled states, cached by encoder."""
    from subtone.service.models.registry import sha256_file

    enc = encoder_path(models_dir)
    tag = f"{sha256_file(enc)[:12]}-{FEATURES}"
    rows = corpus_rows(shared)
    x = select_blocks(extract(enc, rows, 0.0, cache_dir / f"feats-{tag}+0.npy", threads), LAYERS)
    other = None
    if gain_augment:
        gains = np.random.default_rng(0).uniform(*GAIN_RANGE_DB, len(rows))
        other = select_blocks(extract(enc, rows, gains, cache_dir / f"feats-{tag}-random-gain.npy", threads), LAYERS)
    return Corpus(rows, x), other


def calibrate(head: HeadWeights, c: Corpus, prior: FeatureStats, val: np.ndarray) -> tuple[float, float]:
    """(temperature, threshold) on the validation actors in session mode: the threshold is the
    median calibrated confidence there, so about half of such speech gets a color."""
    logits_probs, _ = head.forward(session_standardised(c.x, val, c.speaker, prior, adapt=True))
    logits = np.log(logits_probs + 1e-12)
    temperature = fit_temperature(logits, c.y[val])
    return temperature, float(np.median(softmax(logits, temperature).max(1)))


def score(head: HeadWeights, c: Corpus, prior: FeatureStats, rows: np.ndarray, temperature: float,
          threshold: float, adapt: bool) -> dict:
    probs, strong = head.forward(session_standardised(c.x, rows, c.speaker, prior, adapt), temperature)
    conf, pred = probs.max(1), probs.argmax(1)
    shown = conf >= threshold
    out: dict = {"clips": int(rows.size), "coverage": float(shown.mean())}
    labelled = c.y[rows] >= 0
    if labelled.any():
        right = pred[labelled] == c.y[rows][labelled]
        out["accuracy"] = float(right.mean())
        out["accuracy_shown"] = float(right[shown[labelled]].mean()) if shown[labelled].any() else None
    else:
        out["neutral"] = float((pred == 0).mean())
        out["neutral_or_uncertain"] = float(((pred == 0) | ~shown).mean())
    has = c.strong[rows] >= 0
    if has.any():
        out["intensity_accuracy"] = float(((strong[has] > 0.5) == c.strong[rows][has]).mean())
    out["_rows"], out["_probs"], out["_strong"] = rows, probs, strong
    return out


def run(models_dir: Path, shared: Path, run_dir: Path, cfg: HeadConfig, cache_dir: Path, gain_augment: bool = False) -> dict:
    t0 = time.perf_counter()
    c, other = features(models_dir, shared, cache_dir, gain_augment)
    split = json.loads(SPLIT_FILE.read_text())
    held = np.isin(c.speaker, split["test"] + split["val"])
    train = np.flatnonzero((c.y >= 0) & ~held)
    val, test = np.flatnonzero(np.isin(c.speaker, split["val"])), np.flatnonzero(np.isin(c.speaker, split["test"]))
    prior = prior_of(c.x[train])
    members = [train_member(c.x, c.y, c.strong, c.speaker, c.dataset, train, prior, seed, cfg, other)
               for seed in range(cfg.seeds)]
    head = stack_members(members)
    temperature, threshold = calibrate(head, c, prior, val)
    narration = np.flatnonzero(c.dataset == NARRATION)
    results = {mode: {"heldout": score(head, c, prior, test, temperature, threshold, mode == "adapted"),
                      "narration": score(head, c, prior, narration, temperature, threshold, mode == "adapted")}
               for mode in ("plain", "adapted")}
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "head.npz", **asdict(head), prior_mean=prior.mean, prior_std=prior.std,
             temperature=temperature, threshold=threshold, layers=np.array(LAYERS))
    write_predictions(run_dir / "predictions.csv", c, results["adapted"], threshold)
    metrics = {
        "encoder_model": ENCODER_MODEL, "layers": list(LAYERS), "config": asdict(cfg), "gain_augment": gain_augment,
        "train_clips": int(train.size), "train_corpora": sorted(set(c.dataset[train])),
        "temperature": temperature, "threshold": threshold, "seconds": round(time.perf_counter() - t0, 1),
        **{mode: {part: {k: v for k, v in r.items() if not k.startswith("_")} for part, r in parts.items()}
           for mode, parts in results.items()},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def write_predictions(path: Path, c: Corpus, parts: dict, threshold: float) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "dataset", "speaker", "truth", "predicted", "probability", "shown", "strong"])
        for part in parts.values():
            for i, p, s in zip(part["_rows"], part["_probs"], part["_strong"]):
                k = int(p.argmax())
                out.writerow([c.rows[i].path, c.dataset[i], c.speaker[i], c.rows[i].truth, EMOTIONS[k],
                              f"{p[k]:.4f}", "shown" if p[k] >= threshold else "abstained", f"{s:.3f}"])


def latest_run(runs: Path) -> Path:
    from subtone.service.errors import SubtoneError

    found = sorted((p.parent for p in runs.glob(f"{NAME}-*/head.npz")), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SubtoneError(f"no trained head in {runs} (expected runs/{NAME}-*/head.npz; run "
                           "`subtone train emotion --encoder whisper-base`)")
    return found[-1]


def export_run(run_dir: Path, models_dir: Path, name: str = NAME) -> dict:
    """head.npz → <models_dir>/<name>/head.onnx + prior.npz + MODEL_CARD.md, registered; the ONNX
    graph is checked against the numpy forward pass."""
    import onnxruntime as ort

    from subtone.export.emotion.head_onnx import save_head
    from subtone.export.emotion.head_card import write_head_card
    from subtone.export.manifest_writer import write_entry
    from subtone.service.errors import SubtoneError

    z = np.load(run_dir / "head.npz")
    # The first layer in float16 keeps the committed file under 5 MB; it moves no held-out
    # prediction (docs/benchmarks.md), and the parity check below runs on these very weights.
    head = HeadWeights(z["w1"].astype(np.float16), *(z[k] for k in ("b1", "w2", "b2", "w3", "b3")))
    temperature = float(z["temperature"])
    out = models_dir / name
    onnx_path = save_head(head, temperature, out / "head.onnx")
    np.savez(out / "prior.npz", mean=z["prior_mean"], std=z["prior_std"])
    x = np.random.default_rng(0).standard_normal((8, head.w1.shape[0])).astype(np.float32)
    probs, strong = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"features": x})
    ref_p, ref_s = head.forward(x, temperature)
    diff = float(max(np.abs(probs - ref_p).max(), np.abs(strong - ref_s).max()))
    if diff > 1e-4:
        raise SubtoneError(f"exported {onnx_path} differs from the trained head by {diff:.2e} (expected ≤ 1e-4)")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    write_head_card(out / "MODEL_CARD.md", name, metrics)
    entry = write_entry(models_dir, name, {
        "family": "emotion-head",
        "task": "emotion",
        "files": {"head": f"{name}/head.onnx", "prior": f"{name}/prior.npz"},
        "labels": list(EMOTIONS),
        "sample_rate": 16_000,
        "encoder_model": ENCODER_MODEL,
        "shares_encoder_with": list(SHARES_WITH),
        "encoder_outputs": [f"states_layer{k}" for k in z["layers"]],
        "temperature": temperature,
        "threshold": float(z["threshold"]),
        "input": f"features [N, {head.w1.shape[0]}]: blocks {', '.join(str(k) for k in z['layers'])} of Whisper base's "
                 "encoder, pooled over voiced frames "
                 "(mean, spread), standardised by the session's statistics (prior.npz until a session has its own)",
        "output": "probs [N, 6] (calibrated, in the order of labels), strong [N] (P(strongly expressed))",
        "license": LICENSE,
        "model_card": f"{name}/MODEL_CARD.md",
        "export_command": f"subtone export emotion --run {run_dir.name}",
    })
    return {"path": str(onnx_path), "bytes": onnx_path.stat().st_size, "parity": diff, "entry": entry}


def train_cli(args: argparse.Namespace, models_dir: Path, shared: Path, runs: Path) -> int:
    cfg = HeadConfig(epochs=args.epochs, seeds=args.members)
    run_dir = args.out or runs / f"{NAME}-{time.strftime('%Y%m%d-%H%M%S')}"
    m = run(models_dir, shared, run_dir, cfg, runs / "encoder-features")
    a, p = m["adapted"]["heldout"], m["plain"]["heldout"]
    print(f"held-out actors: {p['accuracy']:.1%} alone, {a['accuracy']:.1%} with session adaptation; "
          f"{a['accuracy_shown']:.1%} right where shown ({a['coverage']:.0%} shown); "
          f"narration neutral or uncertain {m['adapted']['narration']['neutral_or_uncertain']:.0%} → {run_dir}")
    return 0


def export_cli(args: argparse.Namespace, models_dir: Path, runs: Path) -> int:
    t0 = time.perf_counter()
    run_dir = args.run or latest_run(runs)
    res = export_run(run_dir, args.out or models_dir)
    print(f"{res['path']}: {res['bytes'] / 1e6:.2f} MB, parity {res['parity']:.1e}, "
          f"{time.perf_counter() - t0:.1f} s (from {run_dir})")
    return 0
