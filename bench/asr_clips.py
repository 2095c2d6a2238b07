"""What the ASR benchmarks share: reading a manifest.jsonl into clips, and building a recognizer."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from subtone.config import Settings, load_settings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import load_model
from subtone.service.asr.recognizer import SpeechRecognizer, create_recognizer

REPO = Path(__file__).resolve().parent.parent
ASR_DEV_MANIFEST = REPO.parent / "shared" / "data" / "asr-dev" / "manifest.jsonl"


@dataclass(frozen=True)
class Clip:
    audio_path: Path
    text: str
    """Reference transcript."""
    source: str
    """The row's `corpus` field, else the name of the folder holding the audio file."""
    audio: np.ndarray
    """16 kHz mono float32."""
    lang: str = "en"
    """The row's `lang` field: "ko" clips are scored by characters (CER), others by words."""

    @property
    def seconds(self) -> float:
        return self.audio.size / SAMPLE_RATE


def read_clips(manifest: Path, limit: int = 0, stride: int = 1) -> list[Clip]:
    """Every `stride`-th row of a manifest.jsonl (fields `audio`, `text`; paths relative to the manifest), audio loaded."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise SubtoneError(f"manifest not found: {manifest} (expected a manifest.jsonl with audio and text fields)")
    clips = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or (number - 1) % stride:
            continue
        try:
            row = json.loads(line)
            rel = row["audio"]
            # The written form where the manifest has one ("64.5%" for the spoken "육십사쩜오퍼센트"):
            # captions are written text, and the error rate keeps digits.
            text = row.get("text_script") or row["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SubtoneError(
                f"{manifest}:{number} is not a JSON object with 'audio' and 'text' fields"
            ) from None
        path = manifest.parent / rel
        source = str(row.get("corpus") or path.parent.name)
        clips.append(Clip(path, text, source, load_audio(path), str(row.get("lang") or "en")))
        if limit and len(clips) >= limit:
            break
    if not clips:
        raise SubtoneError(f"{manifest} has no rows; expected one JSON object per line with audio and text")
    return clips


def parse_overrides(pairs: Iterable[str]) -> dict[str, object]:
    """KEY=VALUE strings (VALUE in TOML syntax, bare words as strings) into dotted overrides."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SubtoneError(f"--set {pair!r}: expected KEY=VALUE, e.g. asr.whisper.trim_encoder=false")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def make_settings(config: Path | None, overrides: Mapping[str, object]) -> Settings:
    return load_settings(user_file=config, overrides=dict(overrides))


def make_recognizer(settings: Settings, model: str = "") -> SpeechRecognizer:
    entry = load_model(settings.models_dir(), model or settings.asr.model)
    return create_recognizer(entry, settings)


def source_order(clips: Sequence[Clip]) -> list[str]:
    """Sources in order of first appearance."""
    return list(dict.fromkeys(c.source for c in clips))
