"""Spotting a greedy decoder stuck in a loop ("has never been surpassed. Has never been surpassed. …").

Whisper on audio that ends right at the last word (and more so with a trimmed encoder window)
can repeat its last phrase until the token limit: seconds of decoding and garbage text. A phrase
of `min_period` or more tokens three times in a row, back to back, is taken as such a loop (twice
happens in real speech: "can you hear me? can you hear me?"); the third copy goes and decoding
stops, so a loop costs two copies of text at most and speech said twice is never cut.
"""

from __future__ import annotations

from typing import Sequence

MIN_PERIOD = 3
"""Shorter repeats ("very very", "no no") are real speech often enough."""
MAX_PERIOD = 40


REPEATS = 3


def loop_start(tokens: Sequence[int], min_period: int = MIN_PERIOD, max_period: int = MAX_PERIOD) -> int | None:
    """If `tokens` ends with a phrase said REPEATS times back to back, where its last copy starts."""
    n = len(tokens)
    for period in range(min_period, min(max_period, n // REPEATS) + 1):
        last = tokens[n - period :]
        if all(tokens[n - k * period : n - (k - 1) * period] == last for k in range(2, REPEATS + 1)):
            return n - period
    return None
