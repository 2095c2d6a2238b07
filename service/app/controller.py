"""The controller: wires audio → trigger(s) → recognizer worker → caption sinks, and owns the state.

    audio source ──blocks──▶ trigger thread ──utterance events──▶ RecognizerWorker ──Caption──▶ sinks
                             (TriggerStage: push-to-talk, voice or both)

Everything here is plain threads; the Qt side (overlay, tray) only sees the callbacks
`on_caption`, `on_state` and `on_note`, which may be called from any thread (the daemon posts
them through the overlay's CaptionBridge). Tray commands arrive as method calls
(`set_listening`, `set_mode`, `set_device`, `set_source`) from any thread too.

Audio sources (`[audio] source`): one capture and one trigger thread per source, keyed MICROPHONE
and SYSTEM. `set_source` stops only the sources that go (each closes its open utterance, so the
caption being spoken is still decoded) and starts only those that come; the models stay loaded.

State (what the tray shows): ERROR while the microphone or the speech model is unusable (with
its one-line message), else IDLE when not listening, RECOGNISING while the worker decodes,
HEARING while an utterance is open, LISTENING otherwise.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Protocol

from subtone.config import Settings
from subtone.service.asr.recognizer import SpeechRecognizer
from subtone.service.audio import SAMPLE_RATE
from subtone.service.captioning.decode import EmotionClassifier
from subtone.service.captioning.partials import PartialPolicy
from subtone.service.captioning.worker import RecognizerWorker
from subtone.service.events import (
    MICROPHONE,
    SYSTEM,
    Caption,
    ServiceState,
    StateChanged,
    UtteranceEnded,
    UtteranceEvent,
    UtteranceStarted,
)
from subtone.service.trigger.stage import MODES, TriggerStage
from subtone.service.trigger.voice_detector import VoiceDetector

log = logging.getLogger(__name__)


SOURCES: dict[str, tuple[str, ...]] = {
    "microphone": (MICROPHONE,),
    "system": (SYSTEM,),
    "both": (MICROPHONE, SYSTEM),
}
"""[audio] source → the audio sources it runs."""


class AudioSource(Protocol):
    blocks: queue.Queue
    device_name: str

    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> bool: ...
    def set_device(self, spec: str) -> None: ...


@dataclass(frozen=True)
class ModelSet:
    transcriber: SpeechRecognizer
    emotion: EmotionClassifier | None
    note: str
    """Legend note for the overlay ("" when emotion runs), e.g. "emotion off: no emotion model"."""


def fallback_model(name: str) -> str | None:
    """The model to try when `name` is broken: an int8 model's float32 sibling (same export, same words)."""
    return name.removesuffix("-int8") if name.endswith("-int8") else None


def load_speech_model(settings: Settings) -> tuple[SpeechRecognizer, str]:
    """The configured speech model or, when it is broken, its sibling; with a note saying so ("" if none)."""
    from subtone.service.asr.recognizer import create_recognizer
    from subtone.service.models.registry import load_model

    models_dir, name = settings.models_dir(), settings.asr.model
    try:
        return create_recognizer(load_model(models_dir, name), settings), ""
    except Exception as exc:
        fallback = fallback_model(name)
        if fallback is None:
            raise
        try:
            recognizer = create_recognizer(load_model(models_dir, fallback), settings)
        except Exception:
            raise exc from None  # the sibling is no better: report the configured model's problem
        log.error("speech model '%s' unusable (%s); captioning with '%s' instead", name, exc, fallback)
        return recognizer, f"speech model '{name}' broken, using '{fallback}': {exc}"


def load_models(settings: Settings) -> ModelSet:
    """The speech model (required) and the emotion model (optional: its absence is a note, not an error)."""
    transcriber, speech_note = load_speech_model(settings)
    models = _with_emotion(settings, transcriber)
    notes = " · ".join(note for note in (speech_note, models.note) if note)
    return ModelSet(models.transcriber, models.emotion, notes)


def _with_emotion(settings: Settings, transcriber: SpeechRecognizer) -> ModelSet:
    from subtone.service.models.registry import load_model

    models_dir = settings.models_dir()
    if not settings.emotion.enabled:
        return ModelSet(transcriber, None, "emotion off (settings)")
    try:
        from subtone.service.emotion.recognizer import emotion_model
    except ImportError:
        return ModelSet(transcriber, None, "emotion off: this version has no emotion recognizer")
    try:
        emotion = emotion_model(load_model(models_dir, settings.emotion.model), settings, transcriber)
    except Exception as exc:  # a missing or broken emotion model only costs the colors
        log.warning("emotion model unavailable: %s", exc)
        return ModelSet(transcriber, None, f"emotion off: model '{settings.emotion.model}' unavailable")
    return ModelSet(transcriber, emotion, "")


class Controller:
    """`start()`, then tray/hotkey calls; `stop()` ends every thread it started."""

    def __init__(
        self,
        settings: Settings,
        source: AudioSource | Mapping[str, AudioSource],
        on_caption: Callable[[Caption], None],
        on_state: Callable[[StateChanged], None] = lambda event: None,
        on_note: Callable[[str], None] = lambda text: None,
        models: Callable[[], ModelSet] | None = None,
        voice_detector: VoiceDetector | None = None,
        on_banner: Callable[[str], None] = lambda text: None,
        source_factory: Callable[[str], AudioSource] | None = None,
    ) -> None:
        self.settings = settings
        self.sources: dict[str, AudioSource] = dict(source) if isinstance(source, Mapping) else {MICROPHONE: source}
        self._speakers = {MICROPHONE: settings.audio.microphone_name, SYSTEM: settings.audio.system_name}
        self._on_caption = on_caption
        self._on_state = on_state
        self._on_note = on_note
        self._on_banner = on_banner
        self._models = models or (lambda: load_models(settings))
        self._source_factory = source_factory
        """Makes a source for a label (MICROPHONE, SYSTEM); None: the sources cannot change (a recording)."""
        self._ids = itertools.count(1)  # one sequence: utterance ids are unique across sources
        self._voice_detector = voice_detector
        self._mode = settings.trigger.mode
        """The microphone's trigger mode; kept while no microphone runs, for when it comes back."""
        self._listening = settings.trigger.listening
        self.triggers = {label: self._new_trigger(label) for label in self.sources}
        self.worker = RecognizerWorker(
            self._load_models,
            on_caption=self._caption,
            on_busy=self._busy,
            on_error=self._model_failed,
            max_pending=settings.trigger.max_pending_utterances,
            partial_policy=PartialPolicy.from_settings(settings.streaming),
            on_skip=self._skipped,
        )
        self._lock = threading.RLock()
        self._source_errors: dict[str, str] = {}
        self._model_error: str | None = None
        self.settings_note = ""
        """Set by the daemon when keys of the settings file were skipped: shown with the model note,
        never as an error state (captions go on with the rest of the settings)."""
        self._decoding = False
        self._open_utterances: set[int] = set()
        self._key_utterances: set[int] = set()
        """Utterances opened by the hotkey: a press that heard nothing is told "no speech heard"."""
        self._published: StateChanged | None = None
        self._stop = threading.Event()
        self._input_ended = threading.Event()
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        """Each source's trigger thread and the event that ends it alone (a source switched off)."""
        self._switch_lock = threading.Lock()
        """One source switch at a time, and none during stop()."""
        self._emotion_shown = settings.emotion.enabled
        self._models_note = ""
        self.emotion_loaded = False
        """Whether an emotion model runs (known once the models are loaded)."""
        self._emotion_model = None
        self.lost_seconds = 0.0
        """Audio thrown away by sources already switched off (the running ones count their own)."""

    @property
    def source(self) -> AudioSource:
        """The microphone (or the recording played instead), else the one source running; the
        hotkey, mode and device apply to the microphone."""
        sources = self.sources
        return sources.get(MICROPHONE) or next(iter(sources.values()))

    @property
    def trigger(self) -> TriggerStage:
        triggers = self.triggers
        return triggers.get(MICROPHONE) or next(iter(triggers.values()))

    @property
    def source_kind(self) -> str:
        """The running sources as an [audio] source value."""
        labels = tuple(label for label in (MICROPHONE, SYSTEM) if label in self.sources)
        return next((kind for kind, wanted in SOURCES.items() if wanted == labels), "microphone")

    def _new_trigger(self, label: str) -> TriggerStage:
        trigger = TriggerStage.from_settings(self.settings, self._ids, self._voice_detector, audio_source=label)
        if label == MICROPHONE:
            trigger.set_mode(self._mode)
        return trigger

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._publish()
        self.worker.start()
        for label in self.sources:
            self._start_source(label)

    def _start_source(self, label: str) -> None:
        self.sources[label].start()
        ended = threading.Event()
        thread = threading.Thread(target=self._trigger_loop, args=(label, ended), name=f"trigger-{label}", daemon=True)
        self._threads[label] = (thread, ended)
        thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Close open utterances, stop the audio, let the worker finish what waits; True if all ended."""
        with self._switch_lock:
            self._stop.set()
            ok = True
            for thread, _ in self._threads.values():
                thread.join(5.0)
                ok &= not thread.is_alive()
            for source in self.sources.values():
                ok &= source.stop()
            ok &= self.worker.stop(timeout)
            return ok

    def set_source(self, kind: str) -> bool:
        """Caption the microphone, the system audio or both ([audio] source values). Blocks while
        streams stop and open (up to a few seconds): call it off the GUI thread. False when the
        sources cannot change (a recording plays) or the controller is stopping."""
        if kind not in SOURCES:
            raise ValueError(f"audio source {kind!r}: expected one of {', '.join(SOURCES)}")
        with self._switch_lock:
            if self._stop.is_set():
                return False
            if self._source_factory is None:
                log.warning("audio source cannot change while a recording plays")
                return False
            wanted = SOURCES[kind]
            # New sources first: there is always one running (the hotkey, the state, the daemon read it).
            for label in wanted:
                if label not in self.sources:
                    self._add_source(label)
            for label in [label for label in self.sources if label not in wanted]:
                self._stop_source(label)
            log.info("audio source: %s", kind)
        self._publish()
        return True

    def _stop_source(self, label: str) -> None:
        """Stop its audio first, then its trigger thread: that one pushes what is left in the queue and
        closes the open utterance, so the words being spoken still become a caption."""
        source = self.sources[label]
        source.stop()
        thread, ended = self._threads.pop(label)
        ended.set()
        thread.join(5.0)
        if thread.is_alive():
            log.warning("trigger thread for %s did not stop within 5 s", label)
        with self._lock:
            sources = dict(self.sources)
            del sources[label]
            self.sources = sources  # replaced, not changed: readers on other threads see one or the other
            triggers = dict(self.triggers)
            del triggers[label]
            self.triggers = triggers
            self._source_errors.pop(label, None)
        self.lost_seconds += float(getattr(source, "lost_seconds", 0.0))

    def _add_source(self, label: str) -> None:
        assert self._source_factory is not None
        source = self._source_factory(label)
        trigger = self._new_trigger(label)
        with self._lock:  # set_listening holds it too: the new stage cannot miss a change
            trigger.set_listening(self._listening)
            self.sources = {**self.sources, label: source}
            self.triggers = {**self.triggers, label: trigger}
        self._start_source(label)

    def set_speaker_names(self, microphone: str, system: str) -> None:
        """How captions name the two sources ([audio] microphone_name, system_name), from now on."""
        self._speakers = {MICROPHONE: microphone, SYSTEM: system}

    def set_emotion_shown(self, on: bool) -> None:
        """Show or hide the emotion of captions ([emotion] enabled) without reloading models; the
        model loaded at start keeps running, its answer is only left out while hidden."""
        self._emotion_shown = on
        self._post_note()

    def set_min_confidence(self, value: float) -> None:
        """[emotion] min_confidence for the captions from now on (the model keeps running)."""
        if self._emotion_model is not None and hasattr(self._emotion_model, "min_confidence"):
            self._emotion_model.min_confidence = value

    # -- commands from the tray / hotkey (any thread) -----------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @property
    def listening(self) -> bool:
        return self._listening

    def set_listening(self, on: bool) -> None:
        with self._lock:
            self._listening = on
            for trigger in self.triggers.values():
                trigger.set_listening(on)
        log.info("listening %s", "on" if on else "off")
        self._publish()

    def set_mode(self, mode: str) -> None:
        """The microphone's trigger mode (what the computer plays is always voice-triggered)."""
        microphone = self.triggers.get(MICROPHONE)
        if microphone is not None:
            microphone.set_mode(mode)
        elif mode not in MODES:
            raise ValueError(f"trigger mode {mode!r}: expected one of {MODES}")
        self._mode = mode
        log.info("trigger mode: %s", mode)

    def set_device(self, spec: str) -> None:
        microphone = self.sources.get(MICROPHONE)
        if microphone is None:
            log.warning("no microphone in use ([audio] source = system): '%s' not opened", spec)
            return
        log.info("switching microphone to '%s'", spec or "default")
        microphone.set_device(spec)

    def hotkey_pressed(self, *_: Any) -> None:
        self.trigger.press(time.monotonic())

    def hotkey_released(self, *_: Any) -> None:
        self.trigger.release(time.monotonic())

    def end_of_input(self) -> None:
        """A recording played to its end: close what is open once its last block is in (any thread)."""
        self._input_ended.set()

    def microphone_error(self, message: str | None) -> None:
        """The microphone's on_error callback (None: it works again)."""
        self.source_error(MICROPHONE, message)

    def source_error(self, label: str, message: str | None) -> None:
        """An audio source's on_error callback (None: it works again)."""
        with self._lock:
            if message:
                self._source_errors[label] = message
            else:
                self._source_errors.pop(label, None)
        self._publish()

    # -- state -------------------------------------------------------------------------
    def state(self) -> StateChanged:
        with self._lock:
            if self._source_errors:
                return StateChanged(ServiceState.ERROR, "; ".join(self._source_errors.values()))
            if self._model_error:
                return StateChanged(ServiceState.ERROR, self._model_error)
            if not self._listening:
                return StateChanged(ServiceState.IDLE)
            if self._decoding:
                return StateChanged(ServiceState.RECOGNISING)
            if self._open_utterances:
                return StateChanged(ServiceState.HEARING)
            return StateChanged(ServiceState.LISTENING)

    def _publish(self) -> None:
        with self._lock:
            current = self.state()
            if current == self._published:
                return
            self._published = current
        log.info("state: %s%s", current.state.value, f" ({current.detail})" if current.detail else "")
        self._on_state(current)

    # -- worker callbacks (worker thread) -------------------------------------------------
    def _load_models(self) -> tuple[SpeechRecognizer, EmotionClassifier | None]:
        try:
            models = self._models()
        except Exception:
            if self.settings_note:  # the model error takes the tray; the settings still get a word
                self._on_note(self.settings_note)
            raise
        self._models_note = models.note
        self.emotion_loaded = models.emotion is not None
        self._emotion_model = models.emotion
        self._post_note()
        return models.transcriber, models.emotion

    def set_settings_note(self, text: str) -> None:
        """Problems with the settings file (after a reload): shown with the model note."""
        self.settings_note = text
        self._post_note()

    def _post_note(self) -> None:
        hidden = "emotion off (settings)" if self.emotion_loaded and not self._emotion_shown else ""
        self._on_note(" · ".join(note for note in (self.settings_note, self._models_note, hidden) if note))

    def _model_failed(self, message: str) -> None:
        with self._lock:
            self._model_error = message
        self._publish()

    def _busy(self, busy: bool) -> None:
        with self._lock:
            self._decoding = busy
        self._publish()

    def _skipped(self, utterance_id: int, reason: str) -> None:
        with self._lock:
            by_key = utterance_id in self._key_utterances
            self._key_utterances.discard(utterance_id)
        if by_key and reason == "no_speech":
            self._on_banner("no speech heard")

    def _caption(self, caption: Caption) -> None:
        if caption.is_final:
            with self._lock:
                self._key_utterances.discard(caption.utterance_id)
        if len(self.sources) > 1 or caption.audio_source != MICROPHONE:  # say who spoke
            caption = replace(caption, speaker=self._speakers.get(caption.audio_source, caption.audio_source))
        if not self._emotion_shown and caption.emotion is not None:
            # The flags go too: a bold caption with emotion hidden would still say "strongly felt".
            caption = replace(caption, emotion=None, scores={}, emotion_uncertain=False, strong=False)
        try:
            self._on_caption(caption)
        except Exception:  # a broken sink must not stop the recognizer
            log.exception("a caption sink failed")

    # -- the trigger thread --------------------------------------------------------------
    def _trigger_loop(self, label: str, ended: threading.Event) -> None:
        source, trigger = self.sources[label], self.triggers[label]
        t_last = time.monotonic()
        while not self._stop.is_set():
            try:
                block = source.blocks.get(timeout=0.1)
            except queue.Empty:
                if ended.is_set():  # switched off: its audio is stopped and every block is in
                    break
                block = None
            if block is not None:
                t_last = block.t_start + block.samples.size / SAMPLE_RATE
            elif source is self.source and self._input_ended.is_set():
                # The recording ended (maybe mid-word): its last utterance ends with its last block.
                self._input_ended.clear()
                self._forward(trigger.close(t_last))
                continue
            self._forward(trigger.push(block, time.monotonic()))
        self._forward(trigger.close(time.monotonic()))

    def open_utterances(self) -> int:
        with self._lock:
            return len(self._open_utterances)

    def _forward(self, events: list[UtteranceEvent]) -> None:
        if not events:
            return
        for event in events:
            self.worker.submit(event)
            with self._lock:
                if isinstance(event, UtteranceStarted):
                    self._open_utterances.add(event.utterance_id)
                    if event.source == "hotkey":
                        self._key_utterances.add(event.utterance_id)
                elif isinstance(event, UtteranceEnded):
                    self._open_utterances.discard(event.utterance_id)
        self._publish()
