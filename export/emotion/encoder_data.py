"""Clips and cached encoder features for the emotion head on Whisper's encoder (issue 12).

Every labelled clip of the emotion manifests (RAVDESS + TESS, and the Korean one) plus the
LJSpeech narration of asr-dev (no label: scored as "should be neutral or uncertain"). Features
are each clip's every-block encoder states pooled over voiced frames
(subtone.service.emotion.encoder_features, the runtime's own code), cached as .npy per level.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from subtone.export.emotion.eval_scoring import EvalClip, load_eval_manifest, narration_clips

log = logging.getLogger(__name__)

KOREAN = "kor_emotiontts"
NARRATION = "narration"
"""The dataset name of the unlabelled narration clips (eval_scoring.narration_clips)."""
MANIFESTS = ("manifest.csv", "manifest-ko.csv")


def corpus_rows(shared: Path) -> list[EvalClip]:
    """The clips in a fixed order (the feature cache's rows): emotion manifests, then narration;
    the same label policy and clip records as `subtone eval emotion`."""
    rows: list[EvalClip] = []
    for name in MANIFESTS:
        if (shared / "emotion" / name).is_file():
            rows += load_eval_manifest(shared / "emotion" / name)
    if (shared / "asr-dev" / "manifest.jsonl").is_file():
        rows += narration_clips(shared / "asr-dev" / "manifest.jsonl")
    return rows


def encoder_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def extract(encoder: Path, rows: Sequence[EvalClip], gain_db: float | np.ndarray, cache: Path | None,
            threads: int = 2) -> np.ndarray:
    """[clips, blocks, 2·width]: every block's pooled states per clip at `gain_db` (one level, or
    one per clip); read from `cache` when it holds as many clips."""
    from subtone.service.audio.file import load_audio
    from subtone.service.emotion.encoder_features import pooled_features, run_encoder

    if cache is not None and cache.is_file():
        feats = np.load(cache)
        if feats.shape[0] == len(rows):
            return feats
    session = encoder_session(encoder, threads)
    names = [o.name for o in session.get_outputs() if o.name.startswith("states_layer")]
    scales = np.broadcast_to(10 ** (np.asarray(gain_db, dtype=np.float64) / 20), (len(rows),))
    out = []
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        audio = (load_audio(row.path) * scales[i]).astype(np.float32)
        states = run_encoder(session, names, audio)
        out.append(pooled_features(states, names, audio).reshape(len(names), -1))
        if i % 500 == 499:
            log.info("encoder features: %d/%d clips, %.0f s", i + 1, len(rows), time.perf_counter() - t0)
    feats = np.stack(out).astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, feats)
    return feats


@dataclass
class Corpus:
    """Clips as arrays: features (chosen blocks, flattened), labels, speakers, corpora."""

    rows: list[EvalClip]
    x: np.ndarray

    def __post_init__(self) -> None:
        self.speaker = np.array([r.speaker for r in self.rows])
        self.dataset = np.array([r.dataset for r in self.rows])
        self.y = np.array([r.target for r in self.rows])
        self.strong = np.array([{"strong": 1, "normal": 0}.get(r.truth_intensity, -1) for r in self.rows])


def select_blocks(feats: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """[clips, blocks, F] → [clips, len(layers)·F] for 1-based block numbers."""
    return feats[:, [k - 1 for k in layers]].reshape(feats.shape[0], -1)
