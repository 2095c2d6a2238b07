"""Recorded audio through the real trigger and recognizer worker, without a microphone.

For benchmarks (bench/streaming_latency.py, bench/soak.py) and tests: `feed_utterance` plays one
utterance into a RecognizerWorker the way push-to-talk does (start, 30 ms blocks, end), at real
pace or faster; `feed_segmented` cuts a block stream with the VadSegmenter first, like voice
mode. `CaptionLog` is a caption sink that timestamps what comes out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from subtone.service.audio import SAMPLE_RATE
from subtone.service.events import AudioBlock, Caption, UtteranceAudio, UtteranceEnded, UtteranceEvent, UtteranceStarted


@dataclass(frozen=True)
class TimedCaption:
    t: float
    """time.monotonic() when the caption came out of the worker."""
    caption: Caption


class CaptionLog:
    """A thread-safe caption sink; `wait_final` blocks until an utterance's final arrives."""

    def __init__(self, keep: bool = True) -> None:
        self._cond = threading.Condition()
        self._keep = keep
        self.records: list[TimedCaption] = []
        self.finals: dict[int, int] = {}
        """Number of finals per utterance id (more than one is a bug)."""
        self.partials = 0

    def __call__(self, caption: Caption) -> None:
        now = time.monotonic()
        with self._cond:
            if self._keep:
                self.records.append(TimedCaption(now, caption))
            if caption.is_final:
                self.finals[caption.utterance_id] = self.finals.get(caption.utterance_id, 0) + 1
            else:
                self.partials += 1
            self._cond.notify_all()

    def wait_final(self, utterance_id: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while utterance_id not in self.finals:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def of(self, utterance_id: int) -> list[TimedCaption]:
        with self._cond:
            return [r for r in self.records if r.caption.utterance_id == utterance_id]


def blocks_of(audio: np.ndarray, block_ms: int = 30, t0: float = 0.0) -> Iterator[AudioBlock]:
    """`audio` as consecutive AudioBlocks; t_start is audio time from `t0`."""
    step = SAMPLE_RATE * block_ms // 1000
    for start in range(0, audio.size, step):
        yield AudioBlock(audio[start : start + step], t0 + start / SAMPLE_RATE)


def _pacer(pace: float) -> Callable[[float], None]:
    """Sleeps until `audio_s / pace` after the first call (pace 0: never sleeps)."""
    origin = time.monotonic()

    def wait(audio_s: float) -> None:
        if pace > 0:
            delay = origin + audio_s / pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    return wait


def feed_utterance(
    submit: Callable[[UtteranceEvent], None],
    utterance_id: int,
    audio: np.ndarray,
    block_ms: int = 30,
    pace: float = 1.0,
    source: str = "hotkey",
) -> tuple[float, float]:
    """Start, audio blocks at `pace`× real time, end (as a key release); returns monotonic (start, end)."""
    wait = _pacer(pace)
    t_start = time.monotonic()
    submit(UtteranceStarted(utterance_id, t_start, source))
    for block in blocks_of(audio, block_ms):
        wait(block.t_start + block.samples.size / SAMPLE_RATE)  # a block exists once its last sample does
        submit(UtteranceAudio(utterance_id, block.samples))
    t_end = time.monotonic()
    submit(UtteranceEnded(utterance_id, t_end, "released"))
    return t_start, t_end


def feed_segmented(
    segmenter,  # subtone.service.trigger.vad_segmenter.VadSegmenter
    submit: Callable[[UtteranceEvent], None],
    blocks: Iterable[AudioBlock],
    pace: float = 0.0,
    hold: Callable[[], None] = lambda: None,
    on_event: Callable[[UtteranceEvent], None] = lambda event: None,
) -> None:
    """Blocks through the voice trigger into `submit`; `hold()` runs before each block (back-pressure)."""
    wait = _pacer(pace)
    t_first: float | None = None
    for block in blocks:
        if t_first is None:
            t_first = block.t_start
        wait(block.t_start - t_first)
        hold()
        for event in segmenter.push(block):
            on_event(event)
            submit(event)
    for event in segmenter.flush(time.monotonic()):
        on_event(event)
        submit(event)
