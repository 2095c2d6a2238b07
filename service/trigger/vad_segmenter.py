"""Voice trigger: cuts a stream of audio blocks into utterances with a voice detector and a noise gate.

An explicit state machine over fixed frames (10/20/30 ms, [vad] in the config):

    QUIET ──speech frame──▶ STARTING ──enough speech in the start window──▶ SPEAKING
      ▲                        │ window full without enough speech               │ non-speech frame
      │◀───────────────────────┘                                                  ▼
      └──────── end_silence_ms of non-speech (utterance ends) ◀──────────── STOPPING
                                              speech frame again: back to SPEAKING ┘

A frame is *speech* only if the voice detector (webrtcvad by default, see voice_detector.py)
says voiced AND its energy is `noise_margin_db` above the noise floor (the quietest frame of the
last `noise_floor_window_s`): webrtcvad alone calls steady noise speech. Starting also needs the speech frames of the window to vary in level by
`start_modulation_db` (syllables rise and fall; a fan switching on does not), which covers the
seconds after a noise onset before the floor has caught up.

Utterances are streamed as they happen (UtteranceStarted, UtteranceAudio…, UtteranceEnded) so a
recognizer can show partial captions. An utterance with less than `min_speech_ms` of speech ends
with reason "too_short" and must not be captioned.
"""

from __future__ import annotations

import collections
import enum
import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from subtone.config.settings import VadSettings
from subtone.service.audio import SAMPLE_RATE
from subtone.service.trigger.voice_detector import VoiceDetector, WebRtcVoiceDetector
from subtone.service.events import MAX_LENGTH, TOO_SHORT, AudioBlock, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted

SPLIT_SEARCH_S = 2.0
"""A long utterance is split at the quietest frame of its last this-many seconds."""
SILENCE_DB = -100.0
"""Energy given to digital silence, so the floor stays finite."""


class VadState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class Frame:
    samples: np.ndarray
    t_start: float
    energy_db: float
    voiced: bool
    """The voice detector's verdict."""
    speech: bool
    """voiced and clearly above the noise floor."""


def energy_db(samples: np.ndarray) -> float:
    power = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(SILENCE_DB, 10.0 * np.log10(power)) if power > 0 else SILENCE_DB


VOICE_THRESHOLD = 0.5
"""A frame is voiced when the detector's confidence reaches this."""


class FrameClassifier:
    """A voice detector plus the adaptive noise-floor gate, one frame at a time."""

    def __init__(self, settings: VadSettings, detector: VoiceDetector | None = None) -> None:
        self._detector = detector if detector is not None else WebRtcVoiceDetector(settings.aggressiveness)
        self._margin_db = settings.noise_margin_db
        window_frames = max(1, round(settings.noise_floor_window_s * 1000 / settings.frame_ms))
        self._recent_db: collections.deque[float] = collections.deque(maxlen=window_frames)

    @property
    def noise_floor_db(self) -> float:
        return min(self._recent_db) if self._recent_db else SILENCE_DB

    def classify(self, samples: np.ndarray, t_start: float) -> Frame:
        level = energy_db(samples)
        self._recent_db.append(level)
        voiced = self._detector.voice_confidence(samples) >= VOICE_THRESHOLD
        speech = voiced and level >= self.noise_floor_db + self._margin_db
        return Frame(samples, t_start, level, voiced, speech)


class VadSegmenter:
    """Feed AudioBlocks (any length, 16 kHz mono float32); get utterance events back."""

    def __init__(
        self,
        settings: VadSettings,
        ids: Iterator[int] | None = None,
        source: str = "voice",
        detector: VoiceDetector | None = None,
    ) -> None:
        self.settings = settings
        self._ids = ids if ids is not None else itertools.count(1)
        self._source = source
        frame_ms = settings.frame_ms
        self._frame_len = SAMPLE_RATE * frame_ms // 1000
        self._frames_for = lambda ms: max(1, round(ms / frame_ms))
        self._classifier = FrameClassifier(settings, detector)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_t = 0.0
        self.state = VadState.QUIET
        self._pre_roll: collections.deque[Frame] = collections.deque(maxlen=self._frames_for(settings.pre_roll_ms))
        self._window: list[Frame] = []
        self._tail: list[Frame] = []
        self._recent: collections.deque[Frame] = collections.deque(maxlen=self._frames_for(SPLIT_SEARCH_S * 1000))
        """The current utterance's last frames already sent: where a split at max length may fall."""
        self._utterance_id = 0
        self._utterance_t0 = 0.0
        self._speech_frames = 0
        self._continued = False

    @property
    def noise_floor_db(self) -> float:
        return self._classifier.noise_floor_db

    @property
    def in_utterance(self) -> bool:
        return self.state in (VadState.SPEAKING, VadState.STOPPING)

    def push(self, block: AudioBlock) -> list[UtteranceEvent]:
        samples = np.asarray(block.samples, dtype=np.float32)
        if not self._pending.size:
            self._pending_t = block.t_start
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        events: list[UtteranceEvent] = []
        n = self._frame_len
        while self._pending.size >= n:
            frame = self._classifier.classify(self._pending[:n], self._pending_t)
            self._pending = self._pending[n:]
            self._pending_t += n / SAMPLE_RATE
            events.extend(self._step(frame))
        return events

    def flush(self, t_end: float, reason: str = "stopped") -> list[UtteranceEvent]:
        """End an open utterance now (listening switched off, shutdown); reset to QUIET."""
        events: list[UtteranceEvent] = []
        if self.in_utterance:
            events.extend(self._end(t_end, reason))
        self._reset()
        return events

    # -- the state machine -------------------------------------------------------------
    def _step(self, frame: Frame) -> list[UtteranceEvent]:
        s = self.settings
        if self.state is VadState.QUIET:
            if frame.speech:
                self.state = VadState.STARTING
                self._window = [frame]
                return self._try_start()
            self._pre_roll.append(frame)
            return []
        if self.state is VadState.STARTING:
            self._window.append(frame)
            return self._try_start()
        # SPEAKING or STOPPING
        events: list[UtteranceEvent] = []
        if frame.t_start + len(frame.samples) / SAMPLE_RATE - self._utterance_t0 > s.max_utterance_s:
            events.extend(self._split())
        if frame.speech:
            self._speech_frames += 1
            if self._tail:
                events.append(self._audio(self._tail))
                self._tail = []
            events.append(self._audio([frame]))
            self.state = VadState.SPEAKING
            return events
        self.state = VadState.STOPPING
        self._tail.append(frame)
        if len(self._tail) >= self._frames_for(s.end_silence_ms):
            keep = self._tail[: self._frames_for(s.tail_keep_ms)] if s.tail_keep_ms else []
            t_end = (keep[-1].t_start + len(keep[-1].samples) / SAMPLE_RATE) if keep else self._tail[0].t_start
            if keep:
                events.append(self._audio(keep))
            leftover = self._tail[len(keep):]
            events.extend(self._end(t_end, "silence"))
            self._reset()
            self._pre_roll.extend(leftover)
        return events

    def _try_start(self) -> list[UtteranceEvent]:
        s = self.settings
        speech = [f for f in self._window if f.speech]
        if len(speech) >= self._frames_for(s.start_speech_ms) and self._modulated(speech):
            return self._start()
        if len(self._window) >= self._frames_for(s.start_window_ms):
            # Slide: the oldest frame becomes pre-roll; restart the window at the next speech frame.
            self._pre_roll.append(self._window.pop(0))
            while self._window and not self._window[0].speech:
                self._pre_roll.append(self._window.pop(0))
            if not self._window:
                self.state = VadState.QUIET
        return []

    def _modulated(self, speech: list[Frame]) -> bool:
        # The first speech frame is left out: a steady noise that begins late in a frame makes
        # that frame look quieter than the rest, which passed for syllable modulation (~6 % of
        # random fan onsets started an utterance; none do now).
        levels = np.array([f.energy_db for f in speech[1:]])
        return levels.size >= 2 and float(levels.std()) >= self.settings.start_modulation_db

    def _start(self) -> list[UtteranceEvent]:
        frames = [*self._pre_roll, *self._window]
        self._utterance_id = next(self._ids)
        self._utterance_t0 = frames[0].t_start
        self._speech_frames = sum(f.speech for f in self._window)
        self._continued = False
        self._pre_roll.clear()
        self._window = []
        self.state = VadState.SPEAKING
        return [UtteranceStarted(self._utterance_id, self._utterance_t0, self._source), self._audio(frames)]

    def _split(self) -> list[UtteranceEvent]:
        """Max length reached: end this utterance at the quietest frame of the last SPLIT_SEARCH_S
        (a pause between words, where there is one) and go on with a new one from there.

        Frames after that point were already sent to the old utterance: its UtteranceEnded says
        where it really ends (the recognizer drops audio past a "max_length" end) and they are
        sent again as the start of the new one, so no word is cut in two, lost or doubled.
        """
        candidates = [*self._recent, *self._tail]
        cut = min(range(len(candidates)), key=lambda i: (candidates[i].speech, candidates[i].energy_db))
        split = candidates[cut]
        events: list[UtteranceEvent] = []
        before = [f for f in self._tail if f.t_start < split.t_start]
        if before:
            events.append(self._audio(before))
        events.append(UtteranceEnded(self._utterance_id, split.t_start, MAX_LENGTH))
        after = candidates[cut:]
        self._tail = []
        self._recent.clear()
        self._utterance_id = next(self._ids)
        self._utterance_t0 = split.t_start
        self._speech_frames = sum(f.speech for f in after)
        self._continued = True
        events.append(UtteranceStarted(self._utterance_id, split.t_start, self._source))
        events.append(self._audio(after))
        return events

    def _end(self, t_end: float, reason: str) -> list[UtteranceEvent]:
        min_frames = self.settings.min_speech_ms / self.settings.frame_ms
        if self._speech_frames < min_frames and not self._continued:
            reason = TOO_SHORT
        return [UtteranceEnded(self._utterance_id, t_end, reason)]

    def _audio(self, frames: list[Frame]) -> UtteranceAudio:
        self._recent.extend(frames)
        return UtteranceAudio(self._utterance_id, np.concatenate([f.samples for f in frames]))

    def _reset(self) -> None:
        self.state = VadState.QUIET
        self._window = []
        self._tail = []
        self._pre_roll.clear()
        self._recent.clear()
        self._speech_frames = 0
