"""The recent-captions store (pure): finals only, bounded by age and count, one line per caption."""

from __future__ import annotations

import datetime as dt
import time

from subtone.service.app.recent import RecentCaptions, RecentEntry, entry_line
from subtone.service.events import Caption


def caption(uid: int, text: str, final: bool = True, **kw) -> Caption:
    now = time.monotonic()  # caption times are monotonic: "just now"
    return Caption(utterance_id=uid, text=text, is_final=final, t_start=now - 1.0, t_end=now, **kw)


def test_only_finished_captions_with_words_are_kept_oldest_first():
    recent = RecentCaptions()
    recent.add(caption(1, "first", emotion="happy"))
    recent.add(caption(2, "still talk", final=False))
    recent.add(caption(3, "  ", final=True))
    recent.add(caption(4, "second", speaker="computer"))
    _, entries = recent.snapshot()
    assert [e.text for e in entries] == ["first", "second"]
    assert entries[0].emotion == "happy" and entries[1].speaker == "computer"


def test_old_captions_age_out_and_the_count_is_bounded():
    recent = RecentCaptions(max_age_s=60, max_count=3)
    for i, wall in enumerate([100.0, 150.0, 170.0, 180.0]):
        recent.add_entry(RecentEntry(wall, f"t{i}"))
    version, entries = recent.snapshot(now=185.0)
    assert [e.text for e in entries] == ["t1", "t2", "t3"]  # t0 pushed out by the count
    later, entries = recent.snapshot(now=215.0)  # t1 is now older than 60 s
    assert [e.text for e in entries] == ["t2", "t3"] and later != version
    assert recent.snapshot(now=215.0)[0] == later  # nothing changed: same version, no redraw


def test_a_line_has_time_speaker_emotion_and_text():
    wall = dt.datetime(2026, 12, 4, 14, 3, 21).timestamp()
    assert entry_line(RecentEntry(wall, "hello there", "sad", "computer")) == "14:03:21  computer:  sad  hello there"
    assert entry_line(RecentEntry(wall, "hi")) == "14:03:21  hi"


def test_an_uncertain_or_strong_caption_keeps_its_flags_and_says_so_on_its_line():
    recent = RecentCaptions()
    recent.add(caption(1, "maybe cross", emotion="angry", emotion_uncertain=True))
    recent.add(caption(2, "really cross", emotion="angry", strong=True))
    recent.add(caption(3, "plain", emotion="angry"))
    _, (guess, strong, plain) = recent.snapshot()
    assert (guess.emotion_uncertain, guess.strong, strong.emotion_uncertain, strong.strong) == (True, False, False, True)
    assert entry_line(guess).endswith("  angry?  maybe cross")
    assert entry_line(strong).endswith("  angry, strong  really cross")
    assert entry_line(plain).endswith("  angry  plain") and not plain.emotion_uncertain and not plain.strong
    wall = dt.datetime(2026, 12, 4, 14, 3, 21).timestamp()
    assert entry_line(RecentEntry(wall, "hi", None, "", "", True, True)) == "14:03:21  hi"  # no emotion: no flags shown
