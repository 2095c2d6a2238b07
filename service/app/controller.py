"""The controller: wires audio → trigger(s) → recognizer worker → caption sinks, and owns the state.

    audio source ──blocks──▶ trigger thread ──utterance events──▶ RecognizerWorker ──Caption──▶ sinks
                             (TriggerStage: push-to-talk, voice or both)

Everything here is plain threads; the Qt side (overlay, tray) only sees the callbacks
`on_caption`, `on_state` and `on_note`, which may be called from any thread (the daemon posts
them through the overlay's CaptionBridge). Tray commands arrive as method calls
(`set_listening`, `set_mode`, `set_device`) from any thread too.

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
from subtone.service.trigger.stage import TriggerStage
from subtone.service.trigger.voice_detector import VoiceDetector

log = logging.getLogger(__name__)


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
        from subtone.service.emotion.recognizer import EmotionRecognizer
    except ImportError:
        return ModelSet(transcriber, None, "emotion off: this version has no emotion recognizer")
    try:
        emotion = EmotionRecognizer.from_entry(load_model(models_dir, settings.emotion.model), settings)
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
    ) -> None:
        self.settings = settings
        self.sources: dict[str, AudioSource] = dict(source) if isinstance(source, Mapping) else {MICROPHONE: source}
        self.source = self.sources.get(MICROPHONE) or next(iter(self.sources.values()))
        """The microphone (or the recording played instead); the hotkey, mode and device apply to it."""
        self._speakers = {MICROPHONE: settings.audio.microphone_name, SYSTEM: settings.audio.system_name}
        self._on_caption = on_caption
        self._on_state = on_state
        self._on_note = on_note
        self._on_banner = on_banner
        self._models = models or (lambda: load_models(settings))
        ids = itertools.count(1)  # one sequence: utterance ids are unique across sources
        self.triggers = {
            label: TriggerStage.from_settings(settings, ids, voice_detector, audio_source=label) for label in self.sources
        }
        self.trigger = next(t for label, t in self.triggers.items() if self.sources[label] is self.source)
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
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._publish()
        self.worker.start()
        for label, source in self.sources.items():
            source.start()
            thread = threading.Thread(target=self._trigger_loop, args=(label,), name=f"trigger-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> bool:
        """Close open utterances, stop the audio, let the worker finish what waits; True if all ended."""
        self._stop.set()
        ok = True
        for thread in self._threads:
            thread.join(5.0)
            ok &= not thread.is_alive()
        for source in self.sources.values():
            ok &= source.stop()
        ok &= self.worker.stop(timeout)
        return ok

    # -- commands from the tray / hotkey (any thread) -----------------------------------
    @property
    def mode(self) -> str:
        return self.trigger.mode

    @property
    def listening(self) -> bool:
        return self.trigger.listening

    def set_listening(self, on: bool) -> None:
        for trigger in self.triggers.values():
            trigger.set_listening(on)
        log.info("listening %s", "on" if on else "off")
        self._publish()

    def set_mode(self, mode: str) -> None:
        self.trigger.set_mode(mode)
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
            if not self.trigger.listening:
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
        self._on_note(" · ".join(note for note in (self.settings_note, models.note) if note))
        return models.transcriber, models.emotion

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
        try:
            self._on_caption(caption)
        except Exception:  # a broken sink must not stop the recognizer
            log.exception("a caption sink failed")

    # -- the trigger thread --------------------------------------------------------------
    def _trigger_loop(self, label: str) -> None:
        source, trigger = self.sources[label], self.triggers[label]
        t_last = time.monotonic()
        while not self._stop.is_set():
            try:
                block = source.blocks.get(timeout=0.1)
            except queue.Empty:
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
