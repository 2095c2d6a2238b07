"""The events JSONL (`subtone run --events-jsonl`): a caption's emotion flags are written as they came."""

from __future__ import annotations

import json

from subtone.service.app.event_log import EventLog
from subtone.service.events import Caption


def test_caption_lines_carry_emotion_uncertain_and_strong(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.caption(Caption(1, "maybe cross", False, 1.0, 2.0, "angry", {"angry": 0.41}, emotion_uncertain=True))
    log.caption(Caption(1, "really cross", True, 1.0, 2.5, "angry", {"angry": 0.93}, strong=True))
    log.close()
    partial, final = (json.loads(line) for line in path.read_text().splitlines())
    assert (partial["emotion"], partial["emotion_uncertain"], partial["strong"]) == ("angry", True, False)
    assert (final["emotion"], final["emotion_uncertain"], final["strong"]) == ("angry", False, True)
