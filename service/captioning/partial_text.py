"""Keeps partial captions steady: words shown once stay put unless the speech really changed.

Re-decoding the growing utterance every half second gives hypotheses that flicker at the
tail. A word is *committed* once two consecutive hypotheses agree on it as part of their
common prefix (the "local agreement" policy used by streaming Whisper systems); the rest is
a tentative tail that the overlay draws dimmer. The newest hypothesis' last `holdback_words`
never count as agreed: audio cut off mid-word makes the decoder guess the same wrong last word
twice in a row ("fellow Americans and" for "fellow Americans ask").
"""

from __future__ import annotations

from dataclasses import dataclass

from subtone.service.asr.words import word_key


@dataclass(frozen=True)
class PartialText:
    committed: str
    """Words two consecutive decodes agreed on; they only grow during an utterance."""
    tentative: str
    """The newest decode's words after the committed ones."""

    @property
    def text(self) -> str:
        return " ".join(part for part in (self.committed, self.tentative) if part)


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if word_key(x) != word_key(y):
            break
        n += 1
    return n


class PartialStabilizer:
    """Feed each new hypothesis of one utterance; get back what to show."""

    def __init__(self, holdback_words: int = 1) -> None:
        self._holdback = holdback_words
        self._committed: list[str] = []
        self._previous: list[str] = []

    def reset(self) -> None:
        self._committed = []
        self._previous = []

    def update(self, hypothesis: str) -> PartialText:
        words = hypothesis.split()
        agreed = _common_prefix(self._previous, words[: max(0, len(words) - self._holdback)])
        if agreed > len(self._committed) and _common_prefix(self._committed, words) == len(self._committed):
            # Take the newest spelling of agreed words: punctuation settles as context grows.
            self._committed = words[:agreed]
        self._previous = words
        if _common_prefix(self._committed, words) == len(self._committed):
            tail = words[len(self._committed):]
        else:
            # The decoder disagrees with committed words: keep them on screen (no jumping back)
            # and show the new hypothesis' remainder after the matching part.
            tail = words[min(len(words), len(self._committed)):]
        return PartialText(" ".join(self._committed), " ".join(tail))
