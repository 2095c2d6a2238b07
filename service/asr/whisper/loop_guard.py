"""Whisper's guards against a greedy decoder stuck in a loop ("has never been surpassed. Has never …").

Whisper on audio that ends right at the last word (more so with a trimmed encoder window, and on
partial captions, whose audio is cut off mid-word) can repeat its last phrase until the token
limit: seconds of decoding and garbage text. Three guards, all here:
- while decoding, `loop_start`: a phrase of MIN_PERIOD or more tokens three times back to back is a
  loop (twice happens in real speech: "can you hear me? can you hear me?"); the third copy goes
  and decoding stops, so a loop costs two copies of text at most and speech said twice is kept;
- a token cap per second of audio (`final_token_cap`, `partial_token_cap`), far above speech;
- after a decode that hit its cap, `strip_repeats` cuts a word-level loop off the end;
- `drop_unspoken_repeat`: a short utterance decoded with a trimmed window (its silent tail) often
  comes back said twice ("장기자랑 1등은 우리 차지야. 장기자랑 1등은 우리 차지야." from 2.3 s of
  audio). A trailing repeat goes when the text is faster than anyone talks and the text without it
  is not; speech said twice at a human pace stays.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from subtone.service.asr.words import word_key
from subtone.service.audio import SAMPLE_RATE

MIN_PERIOD = 3
"""Shorter token repeats ("very very", "no no") are real speech often enough."""
MAX_PERIOD = 40
REPEATS = 3

MAX_LOOP_WORDS = 8
"""Longest repeated phrase (in words) that `strip_repeats` looks for."""
FINAL_TOKENS_PER_S = 12.0
"""Token cap of a final decode per second of audio (plus a few): about twice fast speech."""


def loop_start(tokens: Sequence[int], min_period: int = MIN_PERIOD, max_period: int = MAX_PERIOD) -> int | None:
    """If `tokens` ends with a phrase said REPEATS times back to back, where its last copy starts."""
    n = len(tokens)
    for period in range(min_period, min(max_period, n // REPEATS) + 1):
        last = tokens[n - period :]
        if all(tokens[n - k * period : n - (k - 1) * period] == last for k in range(2, REPEATS + 1)):
            return n - period
    return None


def strip_repeats(text: str, min_repeats: int = 1) -> str:
    """Cut a decoder loop off the end: "and so my fellow and so my fellow and so" → "and so my fellow".

    A loop of period p is a tail where every word equals the word p before it; it is cut when it
    holds at least `min_repeats` whole repeats of the phrase.
    """
    words = text.split()
    keys = [word_key(w) for w in words]
    best = len(words)
    for period in range(1, min(MAX_LOOP_WORDS, len(words) // 2) + 1):
        run = 0
        while run < len(words) - period and keys[-1 - run] == keys[-1 - run - period]:
            run += 1
        if run >= min_repeats * period:
            best = min(best, len(words) - run)
    return " ".join(words[:best])


def final_token_cap(samples: int) -> int:
    return 8 + math.ceil(FINAL_TOKENS_PER_S * samples / SAMPLE_RATE)


def partial_token_cap(samples: int, tokens_per_s: float) -> int:
    return 4 + math.ceil(tokens_per_s * samples / SAMPLE_RATE)


MAX_UNITS_PER_S = {"ko": 10.0, "ja": 10.0, "zh": 8.0}
"""Fastest plausible speech in letters and digits per second of voiced audio where words are not
spaced reliably (Korean is read at 5-7 syllables a second, 8-9 counting voiced time only)…"""
MAX_WORDS_PER_S = 6.0
"""…and in words per second of voiced audio elsewhere (conversational English 2.5-3 words a second)."""
FRAME = SAMPLE_RATE * 30 // 1000
VOICED_BELOW_PEAK_DB = 35.0
VOICED_FLOOR_DBFS = -50.0


def voiced_seconds(audio: np.ndarray) -> float:
    """Seconds of 30 ms frames loud enough to hold speech (within 35 dB of the loudest, above -50 dBFS):
    clips padded with silence would otherwise make any text look slow."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    if not frames.size:
        return 0.0
    level = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    return float((level > max(VOICED_FLOOR_DBFS, level.max() - VOICED_BELOW_PEAK_DB)).sum() * FRAME / SAMPLE_RATE)


def _rate(text: str, seconds: float, language: str) -> float:
    if language in MAX_UNITS_PER_S:
        units = sum(ch.isalnum() for ch in text)
    else:
        units = len(text.split())
    return units / max(seconds, 0.1)


def drop_unspoken_repeat(text: str, audio: np.ndarray, language: str) -> str:
    """`text` without a trailing repeated phrase when only that repeat makes it faster than speech."""
    shorter = strip_repeats(text)
    if shorter == text:
        return text
    seconds = voiced_seconds(audio)
    limit = MAX_UNITS_PER_S.get(language, MAX_WORDS_PER_S)
    if _rate(text, seconds, language) > limit >= _rate(shorter, seconds, language):
        return shorter
    return text
