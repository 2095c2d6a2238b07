"""A final caption's emotion against what its partials showed (pure logic: a scripted recognizer
and a scripted emotion model stand in; tests/test_emotion_head.py runs the real head)."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import ScriptedRecognizer, speech
from subtone.service.asr.recognizer import CancelToken
from subtone.service.captioning.decode import final_caption, partial_caption
from subtone.service.captioning.partials import PartialPolicy, PartialTrack
from subtone.service.captioning.stream import UtteranceStream
from subtone.service.emotion.recognizer import EmotionResult
from subtone.service.events import EMOTIONS, MICROPHONE


def mood(label: str, p: float, *, uncertain: bool, intensity: float = 0.9) -> EmotionResult:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return EmotionResult(label, {e: p if e == label else rest for e in EMOTIONS}, intensity, uncertain)


class ScriptedMoods:
    """Answers each classify() with the next scripted result; records which calls were finals."""

    def __init__(self, *results: EmotionResult) -> None:
        self.results = list(results)
        self.finals: list[bool] = []

    def classify(self, audio, *, encoder_states=None, source=MICROPHONE, final=True):
        self.finals.append(final)
        return self.results.pop(0)


def captions(*moods: EmotionResult):
    """Partials at 1.5, 2.0, … s of one word's audio (one per mood but the last), then the final."""
    stream = UtteranceStream(1, 0.0, MICROPHONE)
    stream.partial = PartialTrack(PartialPolicy())
    model, recognizer = ScriptedMoods(*moods), ScriptedRecognizer()
    audio = speech(300, 0.5 + 0.5 * len(moods))
    partials = []
    for k in range(len(moods) - 1):
        partials.append(partial_caption(stream, audio[: int(16_000 * (1.5 + 0.5 * k))], recognizer, model, CancelToken()))
    stream.add(audio)
    final = final_caption(stream, recognizer, model)
    assert model.finals == [False] * (len(moods) - 1) + [True]
    return partials, final


def test_an_unsure_final_that_agrees_with_its_partials_keeps_their_color_but_not_bold():
    partials, final = captions(mood("angry", 0.9, uncertain=False), mood("angry", 0.9, uncertain=False),
                               mood("angry", 0.7, uncertain=True))
    assert [p.emotion for p in partials] == ["angry", "angry"]
    assert (final.emotion, final.emotion_uncertain, final.strong) == ("angry", False, False)


@pytest.mark.parametrize("final_mood", [mood("sad", 0.6, uncertain=True), mood("angry", 0.6, uncertain=True)])
def test_an_unsure_final_stays_a_guess_when_its_partials_showed_another_color_or_none(final_mood):
    partial_moods = [mood("angry", 0.9, uncertain=False)] * 2 if final_mood.label == "sad" \
        else [mood("angry", 0.7, uncertain=True)] * 2  # the partials never showed a color
    partials, final = captions(*partial_moods, final_mood)
    assert (final.emotion, final.emotion_uncertain) == (final_mood.label, True)
    assert all(p.emotion in (None, "angry") for p in partials)


def test_a_sure_final_is_shown_as_it_is_and_bold_when_strong():
    _, final = captions(mood("sad", 0.9, uncertain=False), mood("angry", 0.95, uncertain=False, intensity=0.8))
    assert (final.emotion, final.emotion_uncertain, final.strong) == ("angry", False, True)
    assert np.isclose(sum(final.scores.values()), 1.0)
