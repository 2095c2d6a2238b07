"""How words are compared across decodes and recognizers."""

from __future__ import annotations


def word_key(word: str) -> str:
    """A word as compared across decodes: case and punctuation ignored."""
    return "".join(ch for ch in word.lower() if ch.isalnum())
