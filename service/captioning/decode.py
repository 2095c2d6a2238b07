"""Running the models for one job: a final caption, or a partial one. No threads, no scheduling."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol

import numpy as np

from subtone.service.asr.recognizer import CancelToken, SpeechRecognizer, Transcript
from subtone.service.audio import SAMPLE_RATE
from subtone.service.captioning.stream import UtteranceStream
from subtone.service.emotion.recognizer import STRONG_AT
from subtone.service.events import MICROPHONE, Caption, emotion_word

log = logging.getLogger(__name__)

MIN_FINAL_SAMPLES = SAMPLE_RATE // 10
"""Under 0.1 s there is no word to find."""


class EmotionClassifier(Protocol):
    def classify(self, audio: np.ndarray, *, encoder_states: Mapping[str, np.ndarray] | None = None,
                 source: str = MICROPHONE, final: bool = True) -> Any:
        """An object with `.label`, `.scores`, `.uncertain` and `.intensity`
        (subtone.service.emotion.recognizer.EmotionResult), or None when the audio is too short or
        quiet to tell. `encoder_states` are the recognizer's, for a head that shares its encoder;
        `source` selects whose voice the model adapts to; only finals (`final`) teach it that voice."""
        ...


@dataclass(frozen=True)
class Emotion:
    label: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    uncertain: bool = False
    strong: bool = False


def classify_emotion(emotion: EmotionClassifier | None, audio: np.ndarray, utterance_id: int,
                     transcript: Transcript | None = None, source: str = MICROPHONE, final: bool = True) -> Emotion:
    """The emotion of `audio`; an empty Emotion when there is no model, too little signal, or it fails."""
    if emotion is None:
        return Emotion()
    states = transcript.encoder_states if transcript is not None else None
    try:
        result = emotion.classify(audio, encoder_states=states, source=source, final=final)
    except Exception:  # the caption matters more than its color
        log.exception("emotion for utterance %d failed; caption without emotion", utterance_id)
        return Emotion()
    if result is None:
        return Emotion()
    uncertain = bool(getattr(result, "uncertain", False))
    intensity = getattr(result, "intensity", None)
    strong = not uncertain and result.label != "neutral" and intensity is not None and intensity >= STRONG_AT
    return Emotion(result.label, dict(result.scores), uncertain, strong)


def keep_agreed_color(final: Emotion, partials_color: str | None) -> Emotion:
    """An unsure final keeps the color its partials showed when its best guess is that same label:
    two looks agree (one of them sure), and a color that greys out at the last word reads as a
    retraction. Never bold: the final alone was not sure enough for that."""
    if final.uncertain and final.label is not None and final.label == partials_color:
        return replace(final, uncertain=False, strong=False)
    return final


def final_caption(
    stream: UtteranceStream, recognizer: SpeechRecognizer, emotion: EmotionClassifier | None
) -> Caption | None:
    """The final caption of a finished utterance; None when it holds no speech."""
    audio = stream.audio()
    if audio.size < MIN_FINAL_SAMPLES:
        return None
    t0 = time.perf_counter()
    transcript = recognizer.transcribe(audio)
    text = transcript.text.strip()
    t1 = time.perf_counter()
    if not text:
        log.info("utterance %d: no speech (%.2f s decode)", stream.utterance_id, t1 - t0)
        return None
    mood = keep_agreed_color(classify_emotion(emotion, audio, stream.utterance_id, transcript, stream.source),
                             stream.partial.emotion if stream.partial else None)
    changes = stream.partial.label_changes(mood.label if not mood.uncertain else None) if stream.partial else 0
    log.info(
        "utterance %d: %.1f s audio, asr %.3f s, emotion %.3f s (%s, %d label changes)",
        stream.utterance_id,
        audio.size / SAMPLE_RATE,
        t1 - t0,
        time.perf_counter() - t1,
        emotion_word(mood.label, mood.uncertain) or "none",
        changes,
    )
    return Caption(
        utterance_id=stream.utterance_id,
        text=text,
        is_final=True,
        t_start=stream.t_start,
        t_end=stream.t_end,
        emotion=mood.label,
        scores=mood.scores,
        emotion_uncertain=mood.uncertain,
        strong=mood.strong,
        language=transcript.language,
        audio_source=stream.source,
        stable_text=text,
    )


def partial_caption(
    stream: UtteranceStream,
    audio: np.ndarray,
    recognizer: SpeechRecognizer,
    emotion: EmotionClassifier | None,
    cancel: CancelToken,
) -> Caption | None:
    """A partial caption of an open utterance from `audio` (its audio so far); None when nothing to show.

    Raises DecodeCancelled when `cancel` fires (a final preempted it).
    """
    track = stream.partial
    assert track is not None
    transcript = recognizer.transcribe(audio, partial=True, cancel=cancel)
    hypothesis = transcript.text.strip()
    label, scores = track.emotion, {}
    if hypothesis and track.emotion_due(audio):
        mood = classify_emotion(emotion, audio, stream.utterance_id, transcript, stream.source, final=False)
        # An unsure guess never moves the shown color: it stays as it was (none at first).
        if mood.label is not None and not mood.uncertain:
            scores = dict(mood.scores)
            label = track.update_emotion(scores)
    shown = track.update_text(hypothesis)
    if not shown.text:
        return None
    return Caption(
        utterance_id=stream.utterance_id,
        text=shown.text,
        is_final=False,
        t_start=stream.t_start,
        t_end=stream.t_start + audio.size / SAMPLE_RATE,
        emotion=label,
        scores=scores,
        language=transcript.language,
        audio_source=stream.source,
        stable_text=shown.committed,
    )
