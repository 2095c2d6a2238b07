"""Clips and model runs for `subtone eval emotion`: labelled and unlabelled clips, and each model
judged as the runtime judges it.

The head (family "emotion-head") runs through HeadEmotionRecognizer.classify with its own encoder,
in two modes from one encoder pass per clip: "session" (each speaker one conversation, source =
the speaker, clips in `order`, so a clip is judged with the statistics of that speaker's earlier
clips only) and "alone" (every clip a fresh source: judged by the prior, as after a reset). A
waveform model (the CNN) does not adapt: both modes are the same, "alone".
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from subtone.export.emotion.data import LABELS, map_label
from subtone.service.errors import SubtoneError

NARRATION_SPEAKER = "LJ"


@dataclass(frozen=True)
class EvalClip:
    path: Path
    dataset: str
    speaker: str
    truth: str
    """One of LABELS, or "" for an unlabelled clip (narration: should read as neutral or uncertain)."""
    truth_intensity: str = ""

    @property
    def target(self) -> int:
        """LABELS index of the truth; -1 when unlabelled."""
        return LABELS.index(self.truth) if self.truth else -1


def load_eval_manifest(path: Path) -> list[EvalClip]:
    """A manifest.csv's clips after the label policy; rows with an empty emotion are unlabelled."""
    path = Path(path)
    if not path.is_file():
        raise SubtoneError(f"emotion manifest not found: {path} (expected a manifest.csv like ../shared/data/emotion/manifest.csv)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        _check_columns(path, reader.fieldnames or [])
        clips = [_clip(path.parent, row) for row in reader]
    clips = [c for c in clips if c is not None]
    if not clips:
        raise SubtoneError(f"{path}: no usable clips")
    return clips


def _check_columns(path: Path, fields: Sequence[str]) -> None:
    missing = [c for c in ("path", "dataset", "speaker", "emotion") if c not in fields]
    if missing:
        raise SubtoneError(f"{path}: missing column(s) {', '.join(missing)}; expected path, dataset, speaker, emotion")


def _clip(folder: Path, row: dict) -> EvalClip | None:
    emotion = (row.get("emotion") or "").strip()
    label = map_label(emotion) if emotion else ""
    if label is None:  # surprise: no caption colour for it
        return None
    return EvalClip(folder / row["path"], row["dataset"], row["speaker"], label, row.get("intensity") or "")


def narration_clips(jsonl: Path, speaker: str = NARRATION_SPEAKER) -> list[EvalClip]:
    """The unlabelled clips of one speaker in an asr-dev style manifest.jsonl (audio, speaker)."""
    if not Path(jsonl).is_file():
        raise SubtoneError(f"narration manifest not found: {jsonl} (expected ../shared/data/asr-dev/manifest.jsonl)")
    rows = [json.loads(line) for line in Path(jsonl).read_text(encoding="utf-8").splitlines() if line.strip()]
    clips = [EvalClip(Path(jsonl).parent / r["audio"], "narration", r["speaker"], "")
             for r in rows if r.get("speaker") == speaker]
    if not clips:
        raise SubtoneError(f"{jsonl}: no clips of speaker '{speaker}'")
    return clips


@dataclass
class Scores:
    """One run over the clips (clip order): probabilities [N, 6] (uniform where the model gave no
    result: too short or silent), P(strong) [N] (NaN when not scored) and whether it judged [N]."""

    probs: np.ndarray
    intensity: np.ndarray
    judged: np.ndarray

    @classmethod
    def from_results(cls, results: Sequence) -> "Scores":
        probs = np.array([[r.scores[k] for k in LABELS] if r else [1 / len(LABELS)] * len(LABELS) for r in results])
        intensity = np.array([r.intensity if r is not None and r.intensity is not None else np.nan for r in results])
        return cls(probs.astype(float), intensity.astype(float), np.array([r is not None for r in results]))


# (waves, speakers, order, gain in dB) → {mode: Scores}
RunFn = Callable[[Sequence[np.ndarray], Sequence[str], Sequence[int], float], dict]


@dataclass
class Scorer:
    name: str
    adapts: bool
    """True when the model adapts per source (session mode differs from alone)."""
    threshold: float
    run: RunFn


def judge(recognizer, waves: Sequence[np.ndarray], speakers: Sequence[str], order: Sequence[int],
          gain_db: float) -> dict[str, Scores]:
    """Every clip at `gain_db` through `recognizer.classify`, in `order`: once in its speaker's
    session and once alone, from one encoder pass. Sessions start empty at every call."""
    from subtone.service.emotion.recognizer import too_little_signal

    recognizer.reset_sessions()
    sources = {"session": [f"speaker:{s}" for s in speakers], "alone": [f"clip:{i}" for i in range(len(waves))]}
    results: dict[str, list] = {mode: [None] * len(waves) for mode in sources}
    scale = np.float32(10 ** (gain_db / 20))
    for i in order:
        audio = (np.asarray(waves[i], dtype=np.float32) * scale).astype(np.float32)
        states = None if too_little_signal(audio) else recognizer.encoder_states(audio)
        for mode, source in sources.items():
            results[mode][i] = recognizer.classify(audio, encoder_states=states, source=source[i], final=True)
    return {mode: Scores.from_results(r) for mode, r in results.items()}


def head_scorer(entry, settings) -> Scorer:
    from subtone.service.emotion.recognizer import emotion_model

    recognizer = emotion_model(entry, settings)  # no transcriber: its own encoder, as standalone
    return Scorer(entry.name, True, recognizer.min_confidence,
                  lambda waves, speakers, order, gain: judge(recognizer, waves, speakers, order, gain))


def waveform_scorer(name: str, predict, threshold: float) -> Scorer:
    """A model that judges the waveform alone (report.Predictor): the same in every mode."""

    def run(waves, speakers, order, gain):
        probs = np.asarray(predict(waves, gain), dtype=float)
        return {"alone": Scores(probs, np.full(len(waves), np.nan), np.ones(len(waves), dtype=bool))}

    return Scorer(name, False, threshold, run)
