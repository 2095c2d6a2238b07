"""The controller's wiring (trigger thread → worker → captions and states) with the scripted fake
recognizer and voice detector, in milliseconds. Blocks carry past timestamps and keys are pressed
at chosen times, so no real-time pacing is needed; the real model and real key timing are in
test_controller.py."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from fakes import LoudIsVoice, ScriptedRecognizer, quiet, speech, talk
from subtone.config import load_settings
from subtone.service.app.controller import Controller, ModelSet
from subtone.service.audio import SAMPLE_RATE
from subtone.service.events import AudioBlock, ServiceState

BLOCK = 480
WAIT_S = 10.0


class QueueSource:
    def __init__(self) -> None:
        self.blocks: queue.Queue = queue.Queue()
        self.device_name = "test queue"
        self.t = time.monotonic() - 60.0  # audio "heard" a minute ago: keys can be placed anywhere in it

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> bool:
        return True

    def set_device(self, spec: str) -> None: ...

    def play(self, audio: np.ndarray) -> tuple[float, float]:
        t0 = self.t
        for i in range(0, len(audio) - BLOCK + 1, BLOCK):
            self.blocks.put(AudioBlock(audio[i : i + BLOCK], self.t))
            self.t += BLOCK / SAMPLE_RATE
        return t0, self.t


def wait_for(predicate) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture()
def running():
    def make(mode: str, models=None):
        settings = load_settings(overrides={"trigger.mode": mode, "streaming.enabled": False})
        source, captions, states = QueueSource(), [], []
        models = models or (lambda: ModelSet(ScriptedRecognizer(), None, ""))
        ctl = Controller(settings, source, captions.append, states.append, models=models, voice_detector=LoudIsVoice())
        ctl.start()
        assert ctl.worker.models_ready.wait(WAIT_S)
        made.append(ctl)
        return ctl, source, captions, states

    made: list[Controller] = []
    yield make
    for ctl in made:
        assert ctl.stop()


def test_push_to_talk_captions_what_is_said_while_the_key_is_down(running):
    ctl, source, captions, states = running("push-to-talk")
    source.play(quiet(0.5))
    t_press, _ = source.play(speech(7, 1.0))
    ctl.trigger.press(t_press)
    _, t_release = source.play(speech(8, 1.0))
    ctl.trigger.release(t_release)
    source.play(quiet(1.0))
    assert wait_for(lambda: captions)
    assert captions[0].text.split()[-2:] == ["w7", "w8"]  # pre-roll may bring a little silence, no other words
    assert wait_for(lambda: ctl.state().state is ServiceState.LISTENING)
    assert ServiceState.HEARING in {s.state for s in states}


def test_switching_mode_mid_utterance_captions_what_was_heard(running):
    ctl, source, captions, states = running("voice")
    source.play(quiet(2.0))
    source.play(talk(1.5))
    assert wait_for(lambda: ctl.state().state is ServiceState.HEARING)
    ctl.set_mode("push-to-talk")
    source.play(talk(1.0))
    assert wait_for(lambda: len(captions) == 1)
    assert captions[0].is_final and ctl.mode == "push-to-talk"
    assert wait_for(lambda: ctl.state().state is ServiceState.LISTENING)


def test_listening_off_shows_idle_and_captions_nothing(running):
    ctl, source, captions, states = running("voice")
    ctl.set_listening(False)
    source.play(quiet(1.0))
    source.play(talk(2.0))
    source.play(quiet(1.0))
    assert wait_for(lambda: source.blocks.empty())
    assert ctl.state().state is ServiceState.IDLE and captions == []


def test_a_model_that_fails_to_load_shows_as_an_error(running):
    def broken():
        raise FileNotFoundError("speech model 'x' missing")

    ctl, *_ = running("voice", models=broken)
    assert ctl.state().state is ServiceState.ERROR and "speech model 'x' missing" in ctl.state().detail


def test_two_sources_have_their_own_triggers_and_captions_say_who_spoke():
    settings = load_settings(overrides={"trigger.mode": "push-to-talk", "streaming.enabled": False,
                                        "audio.microphone_name": "me", "audio.system_name": "laptop"})
    mic, system, captions = QueueSource(), QueueSource(), []
    ctl = Controller(settings, {"microphone": mic, "system": system}, captions.append,
                     models=lambda: ModelSet(ScriptedRecognizer(), None, ""), voice_detector=LoudIsVoice())
    ctl.start()
    try:
        assert ctl.worker.models_ready.wait(WAIT_S)
        assert ctl.triggers["system"].mode == "voice" and ctl.triggers["microphone"].mode == "push-to-talk"
        for source in (mic, system):  # the same speech on both: only the system's voice trigger hears it
            source.play(quiet(2.0))
            source.play(talk(1.5))
            source.play(quiet(2.0))
        assert wait_for(lambda: captions)
        time.sleep(0.2)
        assert [(c.speaker, c.audio_source) for c in captions] == [("laptop", "system")]
        ctl.set_device("USB")  # a microphone switch goes to the microphone only
    finally:
        assert ctl.stop()


class SwitchableSource(QueueSource):
    """A QueueSource that counts its starts and stops (the source switch must touch only what changes)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.started = 0
        self.stopped = 0
        self.tail = np.zeros(0, dtype=np.float32)
        """Audio the capture still hands over while it stops (the last blocks it had cut)."""

    def start(self) -> None:
        self.started += 1

    def stop(self, timeout: float = 5.0) -> bool:
        self.stopped += 1
        self.play(self.tail)
        return True


def test_switching_the_audio_source_keeps_the_caption_being_spoken_and_the_models():
    settings = load_settings(overrides={"trigger.mode": "voice", "streaming.enabled": False})
    made: dict[str, list[SwitchableSource]] = {"microphone": [], "system": []}

    def factory(label: str) -> SwitchableSource:
        made[label].append(SwitchableSource(label))
        return made[label][-1]

    loads: list[int] = []

    def models() -> ModelSet:
        loads.append(1)
        return ModelSet(ScriptedRecognizer(), None, "")

    captions = []
    mic = factory("microphone")
    ctl = Controller(settings, {"microphone": mic}, captions.append, models=models, voice_detector=LoudIsVoice(),
                     source_factory=factory)
    ctl.start()
    try:
        assert ctl.worker.models_ready.wait(WAIT_S)
        mic.play(quiet(2.0))
        mic.play(talk(1.5))  # someone is talking into the microphone…
        mic.tail = speech(50, 0.5)
        assert wait_for(lambda: ctl.state().state is ServiceState.HEARING)
        assert ctl.set_source("system")  # …when the user switches to what the computer plays
        assert wait_for(lambda: captions)
        # The words spoken still count, to the last block that was captured.
        assert captions[0].is_final and captions[0].audio_source == "microphone" and captions[0].text.endswith("w50")
        assert mic.stopped == 1 and list(ctl.sources) == ["system"] and ctl.source_kind == "system"
        system = made["system"][0]
        assert system.started == 1

        ctl.set_mode("push-to-talk")  # the microphone's mode, kept while no microphone runs…
        assert ctl.triggers["system"].mode == "voice"
        assert ctl.set_source("both")  # …and used when it comes back; the system stream is not reopened
        assert ctl.triggers["microphone"].mode == "push-to-talk" and ctl.mode == "push-to-talk"
        assert made["system"] == [system] and system.stopped == 0 and len(made["microphone"]) == 2
        assert ctl.source_kind == "both"

        ctl.set_listening(False)
        assert ctl.set_source("microphone")
        assert not ctl.triggers["microphone"].listening and system.stopped == 1
        assert ctl.set_source("system")  # a source opened while not listening does not listen either
        assert not ctl.triggers["system"].listening and ctl.state().state is ServiceState.IDLE
        assert len(loads) == 1  # never reloaded
    finally:
        assert ctl.stop()
    assert not ctl.set_source("system")  # stopped: nothing starts again


def test_sources_of_a_recording_cannot_be_switched():
    settings = load_settings(overrides={"streaming.enabled": False})
    ctl = Controller(settings, QueueSource(), lambda c: None, models=lambda: ModelSet(ScriptedRecognizer(), None, ""),
                     voice_detector=LoudIsVoice())
    assert not ctl.set_source("system") and ctl.source_kind == "microphone"


def test_hidden_emotion_and_renamed_speakers_apply_to_the_next_captions():
    from types import SimpleNamespace

    class Sad:
        def classify(self, audio, **context):
            return SimpleNamespace(label="sad", scores={"sad": 0.9})

    settings = load_settings(overrides={"trigger.mode": "voice", "streaming.enabled": False})
    system, captions, notes = QueueSource(), [], []
    ctl = Controller(settings, {"system": system}, captions.append, on_note=notes.append,
                     models=lambda: ModelSet(ScriptedRecognizer(), Sad(), ""), voice_detector=LoudIsVoice())
    ctl.start()
    try:
        assert ctl.worker.models_ready.wait(WAIT_S)
        for name, shown in (("computer", True), ("the call", False)):
            ctl.set_speaker_names("me", name)
            ctl.set_emotion_shown(shown)
            count = len(captions)
            system.play(quiet(2.0))
            system.play(talk(1.5))
            system.play(quiet(2.0))
            assert wait_for(lambda: len(captions) > count)
            assert captions[-1].speaker == name
            assert (captions[-1].emotion, dict(captions[-1].scores)) == (("sad", {"sad": 0.9}) if shown else (None, {}))
        assert notes[-1] == "emotion off (settings)"  # the legend says why the colors are gone
    finally:
        assert ctl.stop()


def test_hidden_emotion_drops_its_uncertain_and_strong_flags_too():
    from subtone.service.events import Caption

    settings = load_settings(overrides={"streaming.enabled": False})
    captions: list = []
    ctl = Controller(settings, QueueSource(), captions.append, models=lambda: ModelSet(ScriptedRecognizer(), None, ""),
                     voice_detector=LoudIsVoice())
    felt = Caption(1, "no way", True, 0.0, 1.0, "angry", {"angry": 0.4}, emotion_uncertain=True, strong=True)
    ctl._caption(felt)
    ctl.set_emotion_shown(False)
    ctl._caption(felt)
    shown, hidden = captions
    assert (shown.emotion, shown.emotion_uncertain, shown.strong) == ("angry", True, True)
    assert (hidden.emotion, dict(hidden.scores), hidden.emotion_uncertain, hidden.strong) == (None, {}, False, False)
