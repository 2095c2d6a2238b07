"""Caption history: finished captions appended to a private JSON-lines transcript, and exports.

One line per final caption: {"start", "end" (ISO 8601 with the UTC offset), "duration_s",
"text", "emotion", "emotion_uncertain" (the emotion is the model's guess, below its confidence
threshold), "strong" (strongly expressed), "scores", "language", "speaker", "session" (when that
`subtone run` started)}. Older files lack the two flags: read as False. Exports mark a guess and a
strong emotion in words ("[angry?, strong]"), since they carry no color or weight. The file is created with mode 0600 (captions are other people's
words) in the user data folder unless [history] file says otherwise; every line is flushed as
it is written, so a crash loses nothing already shown.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import platformdirs

from subtone.config.settings import APP_NAME, HistorySettings
from subtone.service.errors import SubtoneError
from subtone.service.events import Caption, emotion_tag

log = logging.getLogger(__name__)

FORMATS = ("srt", "txt")


def history_path(settings: HistorySettings) -> Path:
    if settings.file:
        return Path(settings.file).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME)) / "history.jsonl"


class CaptionHistory:
    """Appends final captions; `append` may be called from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Caption times are monotonic; this converts them to wall-clock time.
        self._wall_offset = time.time() - time.monotonic()
        self.session = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        """This run's captions share it: exports give each session its own timeline."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # also tightens a file that existed with looser rights
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def append(self, caption: Caption) -> None:
        if not caption.is_final or not caption.text:
            return
        record = {
            "start": self._iso(caption.t_start),
            "end": self._iso(caption.t_end),
            "duration_s": round(caption.t_end - caption.t_start, 2),
            "text": caption.text,
            "emotion": caption.emotion,
            "emotion_uncertain": caption.emotion_uncertain,
            "strong": caption.strong,
            "scores": {k: round(float(v), 4) for k, v in caption.scores.items()},
            "language": caption.language,
            "speaker": caption.speaker,
            "session": self.session,
        }
        with self._lock:
            if self._file.closed:
                return
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def _iso(self, t_monotonic: float) -> str:
        return dt.datetime.fromtimestamp(t_monotonic + self._wall_offset).astimezone().isoformat(timespec="milliseconds")


def write_private(path: Path, text: str) -> None:
    """Write an export readable by its owner only (0600), like the history it comes from."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also tightens a file that existed with looser rights
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def read_history(path: Path) -> list[dict[str, Any]]:
    """The records of a history file; lines that are not valid records are skipped (and logged)."""
    if not path.is_file():
        raise SubtoneError(f"no caption history at {path} (turn on [history] enabled and run `subtone run`)")
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                record = json.loads(line)
                dt.datetime.fromisoformat(record["start"])
                dt.datetime.fromisoformat(record["end"])
                str(record["text"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d: not a caption record, skipped", path, number)
                continue
            records.append(record)
    return records


def _srt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def sessions(records: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Records grouped by the `subtone run` that made them, in order (old records: by day)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r.get("session") or r["start"][:10]), []).append(r)
    return list(groups.values())


def select(records: Iterable[dict[str, Any]], since: dt.datetime | None = None, last_session: bool = False) -> list[dict[str, Any]]:
    """Records starting at or after `since`, and only the last session's when asked."""
    chosen = [r for r in records if since is None or dt.datetime.fromisoformat(r["start"]) >= since]
    if last_session and chosen:
        return sessions(chosen)[-1]
    return chosen


def _tag(record: dict[str, Any]) -> str:
    """A record's emotion for an export: "angry", "angry?" (a guess), "angry, strong"; records
    written before the flags existed have neither."""
    return emotion_tag(record.get("emotion"), bool(record.get("emotion_uncertain")), bool(record.get("strong")))


def to_srt(records: Iterable[dict[str, Any]]) -> str:
    """SubRip, each session's times counted from its own first caption; the emotion leads each caption."""
    blocks = []
    for session in sessions(records):
        origin = dt.datetime.fromisoformat(session[0]["start"])
        for r in session:
            start = (dt.datetime.fromisoformat(r["start"]) - origin).total_seconds()
            end = max(start + 0.5, (dt.datetime.fromisoformat(r["end"]) - origin).total_seconds())
            tag = _tag(r)
            label = f"[{tag}] " if tag else ""
            who = f"{r['speaker']}: " if r.get("speaker") else ""
            blocks.append(f"{len(blocks) + 1}\n{_srt_time(start)} --> {_srt_time(end)}\n{who}{label}{r['text']}\n")
    return "\n".join(blocks)


def to_txt(records: Iterable[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        when = dt.datetime.fromisoformat(r["start"]).strftime("%Y-%m-%d %H:%M:%S")
        tag = _tag(r)
        label = f" ({tag})" if tag else ""
        lines.append(f"[{when}]{label} {r['text']}")
    return "\n".join(lines) + ("\n" if lines else "")
