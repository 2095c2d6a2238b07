"""One utterance on its way to a caption: its audio so far, its partial-caption state, its end."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.captioning.partials import PartialTrack
from subtone.service.events import Caption

MERGE_GAP_S = 0.2
"""Silence put between two merged utterances, so the recognizer hears a pause between them."""
MAX_OPEN_SECONDS = 60.0
"""An open utterance keeps at most this much audio (a stuck key must not eat all memory)."""


@dataclass
class UtteranceStream:
    utterance_id: int
    t_start: float
    source: str
    """The audio source (events.MICROPHONE or SYSTEM): utterances of different sources never merge."""
    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    t_end: float = 0.0
    reason: str = ""
    partial: PartialTrack | None = None
    """Set when the first partial decode starts."""
    partial_posted: bool = False
    """A partial caption of this utterance went out (so it must end with a final)."""

    def add(self, samples: np.ndarray) -> None:
        if self.samples >= MAX_OPEN_SECONDS * SAMPLE_RATE:
            return
        self.chunks.append(samples)
        self.samples += len(samples)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks).astype(np.float32, copy=False) if self.chunks else np.zeros(0, np.float32)

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def shown_text(self) -> str:
        """The text of the last partial caption shown ("" if none)."""
        return self.partial.shown.text if self.partial_posted and self.partial and self.partial.shown else ""

    def end_at(self, t_end: float) -> None:
        """Drop audio past `t_end` (a long utterance split at a pause: that audio starts the next one)."""
        keep = max(0, round((t_end - self.t_start) * SAMPLE_RATE))
        if keep >= self.samples:
            return
        audio = self.audio()[:keep]
        self.chunks, self.samples = [audio], audio.size

    def absorb(self, later: "UtteranceStream") -> None:
        """Append a later utterance's audio (backlog merging): one decode for both, no words lost."""
        gap = np.zeros(round(MERGE_GAP_S * SAMPLE_RATE), np.float32)
        self.chunks += [gap, *later.chunks]
        self.samples += gap.size + later.samples
        self.t_end, self.reason = later.t_end, later.reason

    def settled(self, text: str, t_end: float | None = None) -> Caption:
        """A final that needs no decoding: "" takes a shown partial off the screen."""
        emotion = self.partial.emotion if self.partial is not None and text else None
        end = self.t_end if t_end is None else t_end
        return Caption(self.utterance_id, text, True, self.t_start, end, emotion, stable_text=text, audio_source=self.source)
