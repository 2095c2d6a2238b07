"""Character error rate for languages written without reliable word boundaries, Korean first.

Korean spacing (띄어쓰기) varies between writers and recognizers ("할 수 있다" / "할수있다"), so
word error rate punishes spacing, not hearing. CER compares characters after keeping only
letters (Hangul syllables and jamo, any other script's letters) and digits: spaces and
punctuation go, Latin letters are lower-cased.
"""

from __future__ import annotations

import unicodedata

from subtone.export.evaluation.wer import ErrorCounts, count_errors


def scored_characters(text: str) -> list[str]:
    """The characters CER compares: letters and digits, NFC-composed, case-folded."""
    composed = unicodedata.normalize("NFC", text).casefold()
    return [ch for ch in composed if unicodedata.category(ch)[0] in ("L", "N")]


def character_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Alignment counts over scored characters (`ref_words` then counts characters)."""
    return count_errors(scored_characters(reference), scored_characters(hypothesis))
