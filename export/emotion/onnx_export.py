"""`subtone export emotion`: the trained model as one ONNX graph (front end included), plus its model card."""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from subtone.config import Settings
from subtone.export.emotion.cli import RUNS
from subtone.export.emotion.data import LABELS
from subtone.export.emotion.model import EmotionEnsemble, ProbabilityModel
from subtone.export.manifest_writer import write_entry

log = logging.getLogger(__name__)

NAME = "emotion-cnn"
OPSET = 17
PARITY_ATOL = 1e-4


def latest_run(runs: Path) -> Path:
    from subtone.service.errors import SubtoneError

    found = sorted((p.parent for p in runs.glob("emotion-*/model.pt")), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SubtoneError(f"no trained emotion run in {runs} (expected runs/emotion-*/model.pt; run `subtone train emotion`)")
    return found[-1]


def export_onnx(model: EmotionEnsemble, path: Path) -> Path:
    """Waveform [1, samples] float32 at 16 kHz → probabilities [1, 6], any number of samples."""
    model = model.eval()
    model.front.use_fft = False  # the convolution DFT: plain ONNX ops, no STFT
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 48_000) * 0.1
    with warnings.catch_warnings():
        # The mask's stride-2 slice cannot be constant-folded; harmless, and not worth a screenful.
        warnings.filterwarnings("ignore", message="Constant folding")
        # The TorchScript exporter is deprecated but still the one that writes this graph in one plain file.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(ProbabilityModel(model), (example,), str(path), input_names=["audio"],
                          output_names=["probs"], dynamic_axes={"audio": {1: "samples"}}, opset_version=OPSET,
                          dynamo=False)
    model.front.use_fft = True
    return path


def parity(model: EmotionEnsemble, onnx_path: Path, waves: list[np.ndarray]) -> float:
    """Largest |ONNX − PyTorch| probability over `waves` (PyTorch on its training-time FFT path)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for w in waves:
            x = np.asarray(w, np.float32)[None]
            ref = model.eval().probabilities(torch.from_numpy(x)).numpy()
            got = session.run(None, {"audio": x})[0]
            worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def export_run(run_dir: Path, models_dir: Path, name: str = NAME, check_waves: list[np.ndarray] | None = None) -> dict:
    """Export `run_dir`/model.pt to `models_dir`/<name>/, write the model card, register the entry."""
    from subtone.export.emotion.model_card import write_model_card
    from subtone.export.emotion.train import load_trained
    from subtone.service.errors import SubtoneError

    model = load_trained(run_dir / "model.pt")
    out = models_dir / name
    onnx_path = export_onnx(model, out / "model.onnx")
    if check_waves is None:
        rng = np.random.default_rng(0)
        check_waves = [rng.standard_normal(n).astype(np.float32) * 0.05 for n in (4_000, 16_000, 48_000)]
    diff = parity(model, onnx_path, check_waves)
    if diff > PARITY_ATOL:
        raise SubtoneError(f"exported {onnx_path} differs from PyTorch by {diff:.2e} (expected ≤ {PARITY_ATOL})")
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    write_model_card(out / "MODEL_CARD.md", name, metrics, onnx_path.stat().st_size, run_dir, len(model.members))
    entry = write_entry(models_dir, name, {
        "family": "emotion",
        "task": "emotion",
        "files": {"model": f"{name}/model.onnx"},
        "labels": list(LABELS),
        "sample_rate": 16_000,
        "input": "audio [1, samples] float32, 16 kHz mono, any length",
        "output": "probs [1, 6], in the order of labels",
        "license": "non-commercial (trained on RAVDESS CC BY-NC-SA 4.0 and TESS CC BY-NC-ND 4.0)",
        "model_card": f"{name}/MODEL_CARD.md",
        "export_command": "subtone export emotion",
    })
    log.info("ONNX vs PyTorch: max |Δp| = %.2e", diff)
    return {"path": str(onnx_path), "bytes": onnx_path.stat().st_size, "parity": diff, "entry": entry}


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """`subtone export emotion` (options: subtone.export.emotion.cli)."""
    t0 = time.perf_counter()
    run_dir = args.run or latest_run(RUNS)
    res = export_run(run_dir, args.out or settings.models_dir())
    print(f"{res['path']}: {res['bytes'] / 1e6:.2f} MB, parity {res['parity']:.1e}, {time.perf_counter() - t0:.1f} s (from {run_dir})")
    return 0
