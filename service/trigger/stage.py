"""The trigger stage: decides when speech becomes an utterance, in any of the three modes.

    AudioBlock ─push(block, now)─▶ TriggerStage ─▶ UtteranceStarted / UtteranceAudio / UtteranceEnded
    hotkey ─press(t) / release(t)─▶     │ push-to-talk: PushToTalkGate
    tray ─set_mode / set_listening─▶    │ voice: VadSegmenter
                                        │ both: voice, and the hotkey wins while held

A pure object: no threads and no clock (times come in as arguments), so every mode switch can be
tested with synthetic blocks in milliseconds. `push` is called from one thread (the trigger
loop); `press`, `release`, `set_mode` and `set_listening` may come from any thread (the gate
keeps its own lock; mode and listening are single assignments read once per block).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Iterator

from subtone.config import Settings
from subtone.service.events import MICROPHONE, AudioBlock, UtteranceEvent, UtteranceStarted
from subtone.service.trigger.push_to_talk import PushToTalkGate
from subtone.service.trigger.vad_segmenter import VadSegmenter, VadState
from subtone.service.trigger.voice_detector import VoiceDetector

MODES = ("push-to-talk", "voice", "both")


class TriggerStage:
    def __init__(
        self,
        gate: PushToTalkGate,
        voice: VadSegmenter,
        mode: str = "push-to-talk",
        listening: bool = True,
        audio_source: str = MICROPHONE,
    ):
        self.gate = gate
        self.voice = voice
        self._mode = _checked(mode)
        self._listening = listening
        self.audio_source = audio_source
        """Stamped on every utterance this stage opens (MICROPHONE or SYSTEM)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        ids: Iterator[int] | None = None,
        detector: VoiceDetector | None = None,
        audio_source: str = MICROPHONE,
    ) -> "TriggerStage":
        """The microphone's stage follows [trigger] mode; what the computer plays is always voice-triggered."""
        ids = ids if ids is not None else itertools.count(1)
        trigger = settings.trigger
        gate = PushToTalkGate(settings.hotkey.style, trigger.hotkey_pre_roll_ms, trigger.hotkey_post_roll_ms, ids)
        mode = trigger.mode if audio_source == MICROPHONE else "voice"
        voice = VadSegmenter(settings.vad, ids, detector=detector)
        return cls(gate, voice, mode, trigger.listening, audio_source)

    # -- commands (any thread) ---------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @property
    def listening(self) -> bool:
        return self._listening

    def set_mode(self, mode: str) -> None:
        self._mode = _checked(mode)

    def set_listening(self, on: bool) -> None:
        self._listening = bool(on)

    def press(self, t: float) -> None:
        """The hotkey went down at monotonic time `t` (ignored in voice mode and while not listening)."""
        if self._mode != "voice" and self._listening:
            self.gate.press(t)

    def release(self, t: float) -> None:
        self.gate.release(t)

    # -- audio (the trigger thread) ----------------------------------------------------
    def push(self, block: AudioBlock | None, now: float) -> list[UtteranceEvent]:
        """Events for one block of audio; `block=None` when none came for a while (key events still happen)."""
        if block is None:
            return self._stamped(self.gate.tick(now))
        mode = self._mode
        if not self._listening:
            return self.close(block.t_start) if self.active else []
        events = self.gate.push(block) if mode != "voice" else self._end_gate(block.t_start)
        if mode == "push-to-talk" or self._hotkey_held:
            # The hotkey wins in "both": a voice utterance in progress ends where the key took over.
            events += self._end_voice(block.t_start)
        else:
            events += self.voice.push(block)
        return self._stamped(events)

    def close(self, t: float) -> list[UtteranceEvent]:
        """End whatever is open at `t` (listening off, shutdown)."""
        return self._stamped(self.gate.stop(t) + self.voice.flush(t))

    def _stamped(self, events: list[UtteranceEvent]) -> list[UtteranceEvent]:
        if self.audio_source == MICROPHONE:
            return events
        return [replace(e, audio_source=self.audio_source) if isinstance(e, UtteranceStarted) else e for e in events]

    @property
    def active(self) -> bool:
        """An utterance is open or about to open."""
        return self._hotkey_held or self.voice.state is not VadState.QUIET

    @property
    def _hotkey_held(self) -> bool:
        return self.gate.is_open or self.gate.wants_open

    def _end_gate(self, t: float) -> list[UtteranceEvent]:
        return self.gate.stop(t) if self._hotkey_held else []

    def _end_voice(self, t: float) -> list[UtteranceEvent]:
        return self.voice.flush(t) if self.voice.state is not VadState.QUIET else []


def _checked(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"trigger mode {mode!r}: expected one of {MODES}")
    return mode
