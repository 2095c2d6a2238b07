"""Push-to-talk: turns hotkey presses and releases into utterances over the audio stream.

Key events arrive on the hotkey thread with monotonic timestamps; audio blocks arrive on the
trigger thread with the monotonic time of their first sample. The gate lines the two up by time:
an utterance holds the blocks from `pre_roll_ms` before the press (the first syllable often
starts with the key) to `post_roll_ms` after the release (audio still in flight from the
microphone), so the result does not depend on how late the blocks arrive.

Styles: "hold" (press starts, release ends) and "toggle" (each press starts or ends). Presses of
an already-held key (auto-repeat) change nothing.
"""

from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.events import AudioBlock, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted

STYLES = ("hold", "toggle")

LATE_GRACE_S = 0.3
"""With no audio arriving (microphone gone), `tick` ends an utterance this long after it should have."""


@dataclass(frozen=True)
class _Command:
    start: bool
    t: float


class PushToTalkGate:
    """press()/release() from any thread; push()/tick() from the one trigger thread."""

    def __init__(
        self,
        style: str = "hold",
        pre_roll_ms: int = 200,
        post_roll_ms: int = 150,
        ids: Iterator[int] | None = None,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"push-to-talk style {style!r}: expected one of {STYLES}")
        self.style = style
        self._pre_roll_s = pre_roll_ms / 1000
        self._post_roll_s = post_roll_ms / 1000
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.Lock()
        self._commands: list[_Command] = []
        self._key_down = False
        self._wants_open = False
        self._history: collections.deque[AudioBlock] = collections.deque()
        self._open_id: int | None = None
        self._close_at: float | None = None

    # -- hotkey thread -----------------------------------------------------------------
    def press(self, t: float) -> None:
        with self._lock:
            if self._key_down:
                return  # auto-repeat
            self._key_down = True
            if self.style == "hold":
                self._request(True, t)
            else:
                self._request(not self._wants_open, t)

    def release(self, t: float) -> None:
        with self._lock:
            self._key_down = False
            if self.style == "hold":
                self._request(False, t)

    def _request(self, start: bool, t: float) -> None:
        if start != self._wants_open:
            self._wants_open = start
            self._commands.append(_Command(start, t))

    @property
    def wants_open(self) -> bool:
        """True from a press that opens until the press/release that closes (what the user asked)."""
        return self._wants_open

    # -- trigger thread ----------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open_id is not None

    def push(self, block: AudioBlock) -> list[UtteranceEvent]:
        t_end = block.t_start + len(block.samples) / SAMPLE_RATE
        events = self._apply_commands(until=t_end)
        if self._open_id is not None:
            if self._close_at is not None and block.t_start >= self._close_at:
                events.append(UtteranceEnded(self._open_id, self._close_at, "released"))
                self._open_id = self._close_at = None
            else:
                events.append(UtteranceAudio(self._open_id, block.samples))
                return events
        self._remember(block)
        return events

    def tick(self, now: float) -> list[UtteranceEvent]:
        """Call when no audio came for a while: commands and ends still happen, late."""
        events = self._apply_commands(until=now - LATE_GRACE_S)
        if self._open_id is not None and self._close_at is not None and now - LATE_GRACE_S >= self._close_at:
            events.append(UtteranceEnded(self._open_id, self._close_at, "released"))
            self._open_id = self._close_at = None
        return events

    def stop(self, t: float, reason: str = "stopped") -> list[UtteranceEvent]:
        """End any open utterance now and forget pending key events (listening off, shutdown)."""
        with self._lock:
            self._commands.clear()
            self._wants_open = False
        events: list[UtteranceEvent] = []
        if self._open_id is not None:
            events.append(UtteranceEnded(self._open_id, t, reason))
        self._open_id = self._close_at = None
        self._history.clear()
        return events

    def _apply_commands(self, until: float) -> list[UtteranceEvent]:
        with self._lock:
            due = [c for c in self._commands if c.t <= until]
            self._commands = [c for c in self._commands if c.t > until]
        events: list[UtteranceEvent] = []
        for command in due:
            if command.start:
                if self._open_id is not None and self._close_at is not None:
                    # Pressed again within the post-roll: end the old one where it was released.
                    events.append(UtteranceEnded(self._open_id, self._close_at, "released"))
                    self._open_id = self._close_at = None
                if self._open_id is None:
                    events.extend(self._open(command.t))
            elif self._open_id is not None and self._close_at is None:
                self._close_at = command.t + self._post_roll_s
        return events

    def _open(self, t_press: float) -> list[UtteranceEvent]:
        self._open_id = next(self._ids)
        self._close_at = None
        since = t_press - self._pre_roll_s
        kept = [b for b in self._history if b.t_start + len(b.samples) / SAMPLE_RATE > since]
        self._history.clear()
        t_start = kept[0].t_start if kept else t_press
        events: list[UtteranceEvent] = [UtteranceStarted(self._open_id, t_start, "hotkey")]
        if kept:
            events.append(UtteranceAudio(self._open_id, np.concatenate([b.samples for b in kept])))
        return events

    def _remember(self, block: AudioBlock) -> None:
        self._history.append(block)
        horizon = block.t_start - self._pre_roll_s - 0.1
        while self._history and self._history[0].t_start < horizon:
            self._history.popleft()
