"""Caption history: private JSON lines, export to .srt and .txt, bad lines skipped."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from subtone.service.errors import SubtoneError
from subtone.service.events import Caption
from subtone.service.app.history import CaptionHistory, read_history, to_srt, to_txt


def caption(uid, text, start, end, emotion="happy", final=True):
    return Caption(uid, text, final, start, end, emotion, {"happy": 0.75, "neutral": 0.25} if emotion else {})


def test_history_appends_final_captions_with_mode_0600(tmp_path):
    path = tmp_path / "deep" / "history.jsonl"
    history = CaptionHistory(path)
    now = time.monotonic()
    history.append(caption(1, "hello there", now, now + 1.5))
    history.append(caption(2, "partial words", now + 2, now + 3, final=False))  # partials are not history
    history.append(caption(3, "", now + 4, now + 5))  # nothing heard
    history.append(caption(4, "second line", now + 6, now + 8, emotion=None))
    history.close()
    assert path.stat().st_mode & 0o777 == 0o600
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["hello there", "second line"]
    assert rows[0]["emotion"] == "happy" and rows[0]["scores"] == {"happy": 0.75, "neutral": 0.25}
    assert rows[0]["duration_s"] == 1.5 and rows[1]["emotion"] is None
    assert rows[0]["start"] < rows[0]["end"] < rows[1]["start"]  # ISO times sort as text within a day


def test_an_existing_loose_file_is_tightened_and_appended_to(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("")
    path.chmod(0o644)
    history = CaptionHistory(path)
    history.append(caption(1, "kept", time.monotonic(), time.monotonic() + 1))
    history.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text().splitlines()) == 1


def test_srt_and_txt_exports(tmp_path):
    path = tmp_path / "history.jsonl"
    history = CaptionHistory(path)
    t = time.monotonic()
    history.append(caption(1, "ask not what your country can do for you", t, t + 2.25))
    history.append(caption(2, "ask what you can do", t + 3.5, t + 5.0, emotion=None))
    history.close()
    with path.open("a") as fh:
        fh.write("{not json\n")
    records = read_history(path)
    assert len(records) == 2
    srt = to_srt(records)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,250\n[happy] ask not what your country can do for you\n")
    assert "2\n00:00:03,500 --> 00:00:05,000\nask what you can do\n" in srt
    txt = to_txt(records).splitlines()
    assert txt[0].endswith("(happy) ask not what your country can do for you") and txt[0].startswith("[20")


def test_history_export_command(tmp_path):
    path = tmp_path / "history.jsonl"
    history = CaptionHistory(path)
    history.append(caption(1, "one line", time.monotonic(), time.monotonic() + 1))
    history.close()
    out = tmp_path / "talk.srt"
    result = subprocess.run(
        [sys.executable, "-m", "subtone.service.cli.main", "history", "export", "--format", "srt", "--file", str(path), "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "[happy] one line" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600  # as private as the history it comes from
    missing = subprocess.run(
        [sys.executable, "-m", "subtone.service.cli.main", "history", "export", "--file", str(tmp_path / "nope.jsonl")],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 1 and "no caption history" in missing.stderr and "Traceback" not in missing.stderr


def test_reading_a_missing_history_is_a_clear_error(tmp_path):
    with pytest.raises(SubtoneError, match="no caption history"):
        read_history(tmp_path / "none.jsonl")


def test_each_session_gets_its_own_timeline_and_exports_pick_a_session_or_a_date(tmp_path):
    import datetime as dt

    from subtone.service.app.history import select

    path = tmp_path / "history.jsonl"
    first = CaptionHistory(path)
    first.session = "2026-12-01T09:00:00+00:00"
    t = time.monotonic()
    first.append(caption(1, "monday morning", t, t + 2.0))
    first.close()
    second = CaptionHistory(path)
    second.session = "2026-12-03T14:00:00+00:00"
    second.append(caption(2, "wednesday afternoon", t + 3600, t + 3601.5))
    second.close()
    records = read_history(path)
    srt = to_srt(records)
    # Both sessions start at zero, not the second an hour after the first.
    assert "1\n00:00:00,000 --> 00:00:02,000\n[happy] monday morning" in srt
    assert "2\n00:00:00,000 --> 00:00:01,500\n[happy] wednesday afternoon" in srt
    assert [r["text"] for r in select(records, last_session=True)] == ["wednesday afternoon"]
    future = dt.datetime.now().astimezone() + dt.timedelta(days=1)
    assert select(records, since=future) == []
    out = tmp_path / "last.srt"
    result = subprocess.run(
        [sys.executable, "-m", "subtone.service.cli.main", "history", "export", "--format", "srt", "--file", str(path),
         "--last-session", "--out", str(out)], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "wednesday" in out.read_text() and "monday" not in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "subtone.service.cli.main", "history", "export", "--file", str(path),
                          "--since", "last tuesday"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected a date" in bad.stderr


def test_uncertain_and_strong_are_kept_and_exports_mark_a_guess(tmp_path):
    path = tmp_path / "history.jsonl"
    history = CaptionHistory(path)
    t = time.monotonic()
    flags = [(False, False), (True, False), (False, True), (True, True)]
    for uid, (uncertain, strong) in enumerate(flags, 1):
        history.append(Caption(uid, f"line {uid}", True, t + uid, t + uid + 0.5, "angry", {"angry": 0.4},
                               emotion_uncertain=uncertain, strong=strong))
    history.close()
    records = read_history(path)
    assert [(r["emotion_uncertain"], r["strong"]) for r in records] == flags
    srt = to_srt(records)
    for label in ("[angry] line 1", "[angry?] line 2", "[angry, strong] line 3", "[angry?, strong] line 4"):
        assert label in srt
    txt = to_txt(records).splitlines()
    assert [line.split("] ", 1)[1] for line in txt] == [
        "(angry) line 1", "(angry?) line 2", "(angry, strong) line 3", "(angry?, strong) line 4"]


def test_a_history_written_before_the_flags_still_exports(tmp_path):
    path = tmp_path / "history.jsonl"
    old = {"start": "2026-12-01T09:00:00.000+00:00", "end": "2026-12-01T09:00:01.000+00:00", "duration_s": 1.0,
           "text": "from an older version", "emotion": "sad", "scores": {}, "language": "", "speaker": "",
           "session": "2026-12-01T09:00:00+00:00"}
    path.write_text(json.dumps(old) + "\n")
    records = read_history(path)
    assert "[sad] from an older version" in to_srt(records)  # no flags: a confident label, as it was shown
    assert to_txt(records).rstrip().endswith("(sad) from an older version")
    no_emotion = {**old, "emotion": None, "emotion_uncertain": True, "strong": True}
    assert "\nfrom an older version" in to_srt([no_emotion])  # flags without an emotion add nothing
