"""Spotting a greedy decoder stuck in a loop ("has never been surpassed. Has never been surpassed. …").

Whisper on audio that ends right at the last word (and more so with a trimmed encoder window)
can repeat its last phrase until the token limit: seconds of decoding and garbage text. A phrase
of `min_period` or more tokens said twice in a row, back to back, is taken as such a loop.
"""

from __future__ import annotations

from typing import Sequence

MIN_PERIOD = 3
"""Shorter repeats ("very very", "no no") are real speech often enough."""
MAX_PERIOD = 40


def loop_start(tokens: Sequence[int], min_period: int = MIN_PERIOD, max_period: int = MAX_PERIOD) -> int | None:
    """If `tokens` ends with a phrase repeated back to back, where the repeat starts; else None."""
    n = len(tokens)
    for period in range(min_period, min(max_period, n // 2) + 1):
        if tokens[n - period :] == tokens[n - 2 * period : n - period]:
            return n - period
    return None
