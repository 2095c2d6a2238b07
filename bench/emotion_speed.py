"""Emotion model speed on one CPU thread: our ONNX model (runtime path) vs the prototype baseline.

    python bench/emotion_speed.py                  # 3 s of a held-out RAVDESS clip, 50 runs each
    python bench/emotion_speed.py --runs 200 --json emotion_speed.json

Both sides see the same 3-second 16 kHz clip. Ours: `subtone.service.emotion.recognizer.EmotionRecognizer`
(ONNX Runtime, intra-op threads = 1; the log-mel front end is inside the graph, so this is the whole
cost). Baseline: the prototype's librosa features (resample to 22.05 kHz, trim, pad to 180,000
samples, ZCR/RMS/13 MFCC) + its LSTM in PyTorch with torch.set_num_threads(1); its trained weights
from runs/emotion-baseline/baseline.pt when present (speed does not depend on the weights).
Engines alternate run by run so load from other jobs hits both alike; median ms per clip reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO.parent / "shared/data/emotion/ravdess/Actor_16/03-01-05-02-01-01-16.flac"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from subtone.config import load_settings
    from subtone.config.settings import project_models_dir
    from subtone.export.emotion import baseline
    from subtone.service.audio.file import load_audio
    from subtone.service.emotion.recognizer import EmotionRecognizer
    from subtone.service.models.registry import load_model

    torch.set_num_threads(1)
    clip = load_audio(CLIP)
    clip = np.resize(clip, 48_000).astype(np.float32)  # exactly 3 s
    settings = load_settings(None, {"runtime.providers": ["cpu"], "runtime.threads": 1})
    entry = load_model(project_models_dir(), settings.emotion.model)
    ours = EmotionRecognizer.from_entry(entry, settings)
    lstm = baseline.BaselineLSTM().eval()
    weights = REPO / "runs/emotion-baseline/baseline.pt"
    if weights.is_file():
        lstm.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))

    def run_baseline() -> None:
        with torch.no_grad():
            lstm(torch.from_numpy(baseline.features(clip))[None])

    def run_ours() -> None:
        ours.classify(clip)

    engines = {"emotion-cnn (ONNX, 1 thread)": run_ours, "baseline (librosa + LSTM, 1 thread)": run_baseline}
    times: dict[str, list[float]] = {k: [] for k in engines}
    for fn in engines.values():  # warm-up (librosa/numba JIT, ORT arena)
        fn(), fn()
    for _ in range(args.runs):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours_ms, base_ms = med["emotion-cnn (ONNX, 1 thread)"], med["baseline (librosa + LSTM, 1 thread)"]
    size = entry.path("model").stat().st_size
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"clip: 3.0 s of {CLIP.name}; {args.runs} runs each, alternating; median ms per clip")
    print("| engine | ms / 3 s clip (median) | p90 | min (least disturbed by other jobs) |")
    print("|---|---|---|---|")
    for name, v in times.items():
        print(f"| {name} | {med[name]:.2f} | {np.percentile(v, 90):.2f} | {min(v):.2f} |")
    print(f"speed ratio baseline / ours: {base_ms / ours_ms:.0f}x; ONNX file {size / 1e6:.2f} MB ({size} bytes)")
    if args.json:
        args.json.write_text(json.dumps({"median_ms": med, "onnx_bytes": size, "runs": args.runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
