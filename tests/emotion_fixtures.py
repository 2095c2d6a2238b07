"""A tiny emotion manifest (a few real clips per speaker) and a tiny training config, for fast tests."""

from __future__ import annotations

import csv
from pathlib import Path

from subtone.export.emotion.augment import AugmentConfig
from subtone.export.emotion.model import ModelConfig
from subtone.export.emotion.train import TrainConfig

TINY_RAVDESS = ("01", "02", "03", "04", "05", "06")
TINY_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")


def tiny_manifest(emotion_data: Path, out: Path, per_speaker: int = 1) -> Path:
    """Copies rows (not audio) for a few speakers into `out`, with paths made absolute."""
    rows, taken = [], {}
    with (emotion_data / "manifest.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        for row in reader:
            spk = row["speaker"]
            wanted = spk.startswith("tess:") or spk.split(":")[1] in TINY_RAVDESS
            key = (spk, row["emotion"])
            if wanted and taken.get(key, 0) < per_speaker:
                taken[key] = taken.get(key, 0) + 1
                row["path"] = str(emotion_data / row["path"])
                rows.append(row)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


TINY_TRAIN = TrainConfig(
    epochs=2, members=2, batch_size=8, lr=3e-3, tess_per_epoch=8, ravdess_repeat=1,
    model=ModelConfig(channels=16, embed=16, hidden=16),
    augment=AugmentConfig(max_crop_s=1.5),
)
