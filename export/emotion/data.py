"""The shared emotion manifest, our label policy, and speaker splits that never leak.

Label policy (6 classes, the order of `subtone.service.events.EMOTIONS`):
- RAVDESS 'calm' becomes 'neutral': both are low-arousal, non-emotional deliveries of the same
  sentences, and keeping them apart would leave 'neutral' with 4 clips per actor.
- 'surprise' (RAVDESS) and 'pleasant surprise' (TESS) are dropped: there is no caption colour for it,
  and folding it into 'happy' or 'fear' would teach the model a wrong mapping.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError
from subtone.service.events import EMOTIONS

LABELS: tuple[str, ...] = EMOTIONS
LABEL_MAP: Mapping[str, str | None] = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fear": "fear",
    "disgust": "disgust",
    "surprise": None,
}
SPLIT_FILE = Path(__file__).with_name("speaker_split.json")
REQUIRED_COLUMNS = ("path", "dataset", "speaker", "sex", "emotion")


@dataclass(frozen=True)
class Clip:
    path: Path
    dataset: str
    speaker: str
    sex: str
    label: str
    """One of LABELS, after the label policy."""
    source_label: str

    @property
    def target(self) -> int:
        return LABELS.index(self.label)


def map_label(source: str) -> str | None:
    """The 6-class label for a corpus label, or None when the clip is left out."""
    try:
        return LABEL_MAP[source.strip().lower()]
    except KeyError:
        raise SubtoneError(f"unknown emotion label '{source}' (expected one of {', '.join(LABEL_MAP)})") from None


def load_manifest(path: str | Path) -> list[Clip]:
    """Clips kept by the label policy; paths resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise SubtoneError(f"emotion manifest not found: {path} (expected a manifest.csv like ../shared/data/emotion/manifest.csv)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SubtoneError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED_COLUMNS)}")
        clips = []
        for row in reader:
            label = map_label(row["emotion"])
            if label is None:
                continue
            clips.append(
                Clip(path.parent / row["path"], row["dataset"], row["speaker"], row["sex"], label, row["emotion"])
            )
    if not clips:
        raise SubtoneError(f"{path}: no usable clips (expected rows with emotions {', '.join(LABELS)})")
    return clips


@dataclass(frozen=True)
class SpeakerSplit:
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def part(self, clips: Iterable[Clip], name: str) -> list[Clip]:
        wanted = set(getattr(self, name))
        return [c for c in clips if c.speaker in wanted]

    def check(self) -> None:
        parts = [set(self.train), set(self.val), set(self.test)]
        if parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]:
            raise SubtoneError("speaker split puts a speaker in two parts; expected disjoint train/val/test")


def make_split(clips: Sequence[Clip], test_per_sex: int = 2, val_per_sex: int = 1, seed: int = 0,
               held_out_dataset: str = "ravdess") -> SpeakerSplit:
    """Held-out test and validation speakers drawn per sex from one corpus; everyone else trains.

    TESS has only two speakers, so it is never held out here (it trains); the leave-one-corpus-out
    evaluation measures transfer to and from it instead.
    """
    by_sex: dict[str, list[str]] = {}
    for c in clips:
        if c.dataset == held_out_dataset and c.speaker not in by_sex.setdefault(c.sex, []):
            by_sex[c.sex].append(c.speaker)
    rng = random.Random(seed)
    test: list[str] = []
    val: list[str] = []
    for sex in sorted(by_sex):
        speakers = sorted(by_sex[sex])
        rng.shuffle(speakers)
        if len(speakers) < test_per_sex + val_per_sex + 1:
            raise SubtoneError(f"only {len(speakers)} {sex} {held_out_dataset} speakers; need {test_per_sex + val_per_sex + 1}")
        test += speakers[:test_per_sex]
        val += speakers[test_per_sex:test_per_sex + val_per_sex]
    held = set(test) | set(val)
    train = sorted({c.speaker for c in clips} - held)
    split = SpeakerSplit(tuple(train), tuple(sorted(val)), tuple(sorted(test)))
    split.check()
    return split


def save_split(split: SpeakerSplit, path: Path) -> None:
    data = {"train": list(split.train), "val": list(split.val), "test": list(split.test)}
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def load_split(path: Path) -> SpeakerSplit:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        split = SpeakerSplit(tuple(data["train"]), tuple(data["val"]), tuple(data["test"]))
    except (OSError, ValueError, KeyError) as exc:
        raise SubtoneError(f"speaker split {path} is unreadable ({exc}); expected JSON with train/val/test lists") from None
    split.check()
    return split


def split_for(clips: Sequence[Clip], path: Path = SPLIT_FILE) -> SpeakerSplit:
    """The split saved at `path` (made and saved on first use), so every run scores the same speakers."""
    path = Path(path)
    if path.is_file():
        return load_split(path)
    split = make_split(clips)
    save_split(split, path)
    return split


def trim_silence(audio: np.ndarray, rate: int = 16_000, below_peak_db: float = 40.0, margin_s: float = 0.1) -> np.ndarray:
    """Cut leading/trailing frames quieter than peak − below_peak_db (relative, so level-independent)."""
    hop = rate // 100
    n = audio.size // hop
    if n < 3:
        return audio
    energy = (audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1) + 1e-20
    db = 10 * np.log10(energy)
    loud = np.flatnonzero(db > db.max() - below_peak_db)
    margin = int(margin_s * 100)
    start = max(loud[0] - margin, 0) * hop
    end = min((loud[-1] + 1 + margin) * hop, audio.size)
    return audio[start:end]


def load_clip_audio(clips: Sequence[Clip], trim: bool = True, progress: bool = False) -> list[np.ndarray]:
    """16 kHz float32 waveforms for `clips`, optionally trimmed of edge silence."""
    from tqdm import tqdm

    out = []
    for c in tqdm(clips, desc="loading audio", unit="clip", disable=not progress, leave=False):
        audio = load_audio(c.path)
        out.append(trim_silence(audio) if trim else audio)
    return out
