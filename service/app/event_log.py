"""Captions and state changes as JSON lines, for tests, soak runs and scripts (`subtone run --events-jsonl`).

Each line has "type" ("caption", "state", "ready", "note", "reload" or "exit"), "wall" (Unix time written) and "mono" (monotonic
time written, comparable with a caption's t_start/t_end, which are monotonic too).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from subtone.service.events import Caption, StateChanged


class EventLog:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._file = Path(path).open("a", encoding="utf-8", buffering=1)

    def caption(self, caption: Caption) -> None:
        self._write(
            {
                "type": "caption",
                "utterance_id": caption.utterance_id,
                "text": caption.text,
                "stable_text": caption.stable_text,
                "is_final": caption.is_final,
                "t_start": round(caption.t_start, 4),
                "t_end": round(caption.t_end, 4),
                "emotion": caption.emotion,
                "emotion_uncertain": caption.emotion_uncertain,
                "strong": caption.strong,
                "scores": {k: round(float(v), 4) for k, v in caption.scores.items()},
                "language": caption.language,
                "audio_source": caption.audio_source,
                "speaker": caption.speaker,
            }
        )

    def state(self, event: StateChanged) -> None:
        self._write({"type": "state", "state": event.state.value, "detail": event.detail})

    def ready(self, hotkey: bool, source: str) -> None:
        """Written once everything has started (the hotkey listener included)."""
        self._write({"type": "ready", "hotkey": hotkey, "source": source})

    def exit(self, clean: bool, threads: list[str], audio_lost_s: float = 0.0) -> None:
        """The last line: whether every thread ended, the names of any still running, audio thrown away."""
        self._write({"type": "exit", "clean": clean, "threads": threads, "audio_lost_s": round(audio_lost_s, 3)})

    def reload(self, text: str, live: tuple[str, ...], restart: tuple[str, ...], problems: tuple[str, ...]) -> None:
        """The settings file was reloaded: the banner's words, and the keys applied, waiting, skipped."""
        self._write({"type": "reload", "text": text, "live": list(live), "restart": list(restart),
                     "problems": list(problems)})

    def note(self, text: str) -> None:
        self._write({"type": "note", "text": text})

    def _write(self, record: dict) -> None:
        record = {**record, "wall": round(time.time(), 4), "mono": round(time.monotonic(), 4)}
        with self._lock:
            if not self._file.closed:
                self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()
