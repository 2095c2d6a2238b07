"""The last few minutes of finished captions of this session, for the "Recent captions" window
(pure: no Qt; thread-safe, since captions arrive on the recognizer's thread).

    recent = RecentCaptions(max_age_s=600, max_count=200)
    recent.add(caption)                  # a final caption, as it goes to the history
    version, entries = recent.snapshot() # oldest first; `version` changes with every add
    entry_line(entries[-1])              # "14:03:21  computer:  happy  the words"
                                         # a guess: "angry?"; strongly expressed: "angry, strong"
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass

from subtone.service.events import Caption, emotion_tag

MAX_AGE_S = 600.0
"""Captions older than this (wall time of their start) leave the window."""
MAX_COUNT = 200


@dataclass(frozen=True)
class RecentEntry:
    wall: float
    """Unix time the utterance started."""
    text: str
    emotion: str | None = None
    speaker: str = ""
    """Who spoke ("you", "computer") when captions say it, else ""."""
    language: str = ""
    emotion_uncertain: bool = False
    """The emotion is the model's guess (below its confidence threshold): shown as "angry?"."""
    strong: bool = False
    """Strongly expressed: the overlay's bold, said in words here ("angry, strong")."""


class RecentCaptions:
    def __init__(self, max_age_s: float = MAX_AGE_S, max_count: int = MAX_COUNT) -> None:
        self.max_age_s = max_age_s
        self._entries: deque[RecentEntry] = deque(maxlen=max_count)
        self._lock = threading.Lock()
        self._version = 0
        # Caption times are monotonic; this converts them to wall-clock time (as the history does).
        self._wall_offset = time.time() - time.monotonic()

    def add(self, caption: Caption) -> None:
        """Keep a final caption with words; partials and empty finals are ignored."""
        if not caption.is_final or not caption.text.strip():
            return
        self.add_entry(RecentEntry(caption.t_start + self._wall_offset, caption.text.strip(), caption.emotion,
                                   caption.speaker, caption.language, caption.emotion_uncertain, caption.strong))

    def add_entry(self, entry: RecentEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            self._version += 1

    def snapshot(self, now: float | None = None) -> tuple[int, list[RecentEntry]]:
        """(version, the entries no older than max_age_s, oldest first). The version changes when
        an entry is added or ages out, so a window redraws only then."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        with self._lock:
            while self._entries and self._entries[0].wall < cutoff:
                self._entries.popleft()
                self._version += 1
            return self._version, list(self._entries)


def entry_line(entry: RecentEntry) -> str:
    """One line of the window: local time, who spoke (when known), the emotion word (a guess marked
    "angry?", strong as "angry, strong"), the text."""
    when = dt.datetime.fromtimestamp(entry.wall).strftime("%H:%M:%S")
    parts = [when]
    if entry.speaker:
        parts.append(f"{entry.speaker}:")
    tag = emotion_tag(entry.emotion, entry.emotion_uncertain, entry.strong)
    if tag:
        parts.append(tag)
    parts.append(entry.text)
    return "  ".join(parts)
