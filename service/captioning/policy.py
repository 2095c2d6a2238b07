"""What the recognizer worker does next: a pure scheduling policy, no threads and no models.

Priorities, highest first:
1. captions that need no decoding (an utterance that showed a partial but will get no decoded final);
2. finals, oldest first. A final is never dropped: when `max_pending` finished utterances already
   wait, the oldest two neighbours of the same source are merged into one (one decode, every word
   kept) as long as the merged audio stays under MAX_MERGED_S; otherwise they all wait;
3. a partial of the newest open utterance that has enough new audio, only while no final waits.
   A partial is never queued: one that falls due while the worker is busy is made later, from
   more audio, so partials are what gets skipped when the recognizer lags.
A final that arrives while a partial decode runs preempts it (`accept` returns True).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from subtone.service.captioning.partials import PartialPolicy, PartialTrack
from subtone.service.captioning.stream import UtteranceStream
from subtone.service.events import MAX_LENGTH, TOO_SHORT, Caption, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted

log = logging.getLogger(__name__)

DISCARD_REASONS = frozenset({TOO_SHORT})
MAX_MERGED_S = 25.0
"""Merged backlog stays within one Whisper window (30 s) with room to spare."""


@dataclass(frozen=True)
class PostCaptions:
    captions: tuple[Caption, ...]


@dataclass(frozen=True)
class DecodeFinal:
    stream: UtteranceStream


@dataclass(frozen=True)
class DecodePartial:
    stream: UtteranceStream
    audio: np.ndarray


@dataclass(frozen=True)
class Finish:
    """Stopping and nothing left to do."""


Job = PostCaptions | DecodeFinal | DecodePartial | Finish


class SchedulingPolicy:
    """Feed utterance events with `accept`; ask `next_job` what to do. Not thread-safe: the caller locks."""

    def __init__(
        self,
        max_pending: int = 3,
        partials: PartialPolicy | None = None,
        on_skip: Callable[[int, str], None] = lambda utterance_id, reason: None,
    ) -> None:
        self.max_pending = max_pending
        self.partials = partials
        self._on_skip = on_skip
        self.open: dict[int, UtteranceStream] = {}
        self.ready: collections.deque[UtteranceStream] = collections.deque()
        self._settle: collections.deque[Caption] = collections.deque()
        self.stopping = False
        self.discarded = 0
        self.merged = 0

    # -- input -------------------------------------------------------------------------
    def accept(self, event: UtteranceEvent) -> bool:
        """Take one event; True when a partial decode in flight should be cancelled (a final waits)."""
        if isinstance(event, UtteranceStarted):
            self.open[event.utterance_id] = UtteranceStream(event.utterance_id, event.t_start, event.audio_source)
        elif isinstance(event, UtteranceAudio):
            stream = self.open.get(event.utterance_id)
            if stream is not None:
                stream.add(event.samples)
        elif isinstance(event, UtteranceEnded):
            return self._end(event)
        return False

    def stop(self) -> None:
        """Finish what waits, start no partial, then Finish."""
        self.stopping = True

    def _end(self, event: UtteranceEnded) -> bool:
        stream = self.open.pop(event.utterance_id, None)
        if stream is None:
            return False
        stream.t_end, stream.reason = event.t_end, event.reason
        if event.reason == MAX_LENGTH:
            stream.end_at(event.t_end)
        if event.reason in DISCARD_REASONS:
            self.discarded += 1
            self._on_skip(stream.utterance_id, "discarded")
            self._settle_partial(stream, "")
            return False
        self.ready.append(stream)
        if len(self.ready) > self.max_pending:
            self._merge_backlog()
        return True

    def _merge_backlog(self) -> None:
        """Merge the oldest two neighbours of one source that fit in one decode; else let them wait."""
        waiting = list(self.ready)
        pairs = zip(waiting, waiting[1:])
        pair = next((p for p in pairs if p[0].source == p[1].source and p[0].seconds + p[1].seconds <= MAX_MERGED_S), None)
        if pair is None:
            log.warning("recognizer is behind: %d utterances wait", len(self.ready))
            return
        first, second = pair
        self.ready.remove(second)
        first.absorb(second)
        self.merged += 1
        self._on_skip(second.utterance_id, "merged")
        self._settle_partial(second, "")
        log.warning(
            "recognizer is behind: utterance %d merged into %d (%.1f s in one decode)",
            second.utterance_id,
            first.utterance_id,
            first.seconds,
        )

    def _settle_partial(self, stream: UtteranceStream, text: str) -> None:
        if stream.partial_posted:
            self._settle.append(stream.settled(text))

    # -- output ------------------------------------------------------------------------
    def next_job(self, can_decode: bool = True) -> Job | None:
        """The next thing to do, or None to wait for more events. `can_decode`: a recognizer is loaded."""
        if self._settle:
            captions = tuple(self._settle)
            self._settle.clear()
            return PostCaptions(captions)
        if self.ready:
            return DecodeFinal(self.ready.popleft())
        if self.stopping:
            return Finish()
        stream = self.partial_due() if can_decode else None
        if stream is None:
            return None
        audio = stream.audio()
        if stream.partial is None:
            assert self.partials is not None
            stream.partial = PartialTrack(self.partials)
        stream.partial.decoded_samples = audio.size
        return DecodePartial(stream, audio)

    def partial_due(self) -> UtteranceStream | None:
        """The newest open utterance with enough new audio for a partial."""
        if self.partials is None:
            return None
        for stream in sorted(self.open.values(), key=lambda s: -s.utterance_id):
            decoded = stream.partial.decoded_samples if stream.partial is not None else 0
            if self.partials.is_due(stream.samples, decoded):
                return stream
        return None

    def partial_shown(self, stream: UtteranceStream) -> bool:
        """A partial of `stream` is about to be posted: False if it ended meanwhile (its final comes next)."""
        if stream.utterance_id not in self.open:
            return False
        stream.partial_posted = True
        return True

    @property
    def pending(self) -> int:
        return len(self.ready)
