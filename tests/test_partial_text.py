from subtone.service.emotion.smoothing import EmotionHysteresis, HysteresisParams
from subtone.service.captioning.partial_text import PartialStabilizer


def test_words_commit_only_after_two_decodes_agree():
    s = PartialStabilizer()
    first = s.update("and so my")
    assert first.committed == "" and first.tentative == "and so my"
    second = s.update("and so my fellow")
    assert second.committed == "and so my"
    assert second.tentative == "fellow"


def test_committed_words_never_retract_when_the_decoder_changes_its_mind():
    s = PartialStabilizer()
    s.update("ask not what")
    s.update("ask not what your")
    shown = s.update("ask knot what your country")
    assert shown.committed == "ask not what"
    assert shown.text.startswith("ask not what")
    assert shown.tentative == "your country"


def test_punctuation_does_not_block_agreement_and_the_newest_spelling_wins():
    s = PartialStabilizer()
    s.update("ask not what your")
    shown = s.update("Ask not, what your country")
    assert shown.committed == "Ask not, what your"


def test_reset_starts_a_new_utterance():
    s = PartialStabilizer()
    s.update("one two")
    s.update("one two three")
    s.reset()
    assert s.update("four").committed == ""


def _scores(label, p=0.7):
    rest = (1 - p) / 5
    labels = ["neutral", "happy", "sad", "angry", "fear", "disgust"]
    return {k: (p if k == label else rest) for k in labels}


def test_emotion_label_ignores_a_single_flicker():
    h = EmotionHysteresis(HysteresisParams(smoothing=0.5, margin=0.1, hold_updates=2))
    assert h.update(_scores("sad")) == "sad"
    assert h.update(_scores("angry", 0.9)) == "sad"
    assert h.update(_scores("sad")) == "sad"


def test_emotion_label_follows_a_sustained_change():
    h = EmotionHysteresis(HysteresisParams(smoothing=0.5, margin=0.1, hold_updates=2))
    h.update(_scores("sad"))
    shown = [h.update(_scores("angry", 0.9)) for _ in range(4)]
    assert shown[-1] == "angry"
    assert shown[0] == "sad"
