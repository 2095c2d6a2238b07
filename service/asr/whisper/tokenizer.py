"""Whisper's byte-level BPE over the bundled tokenizer.json, plus its special token ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from tokenizers import Tokenizer

from subtone.service.errors import SubtoneError


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of Whisper's control tokens; every id ≥ `sot` is a control or timestamp token."""

    eot: int
    sot: int
    no_speech: int
    no_timestamps: int
    timestamp_begin: int

    @classmethod
    def from_mapping(cls, ids: Mapping[str, int]) -> "SpecialTokens":
        try:
            return cls(**{name: int(ids[name]) for name in cls.__dataclass_fields__})
        except KeyError as exc:
            raise SubtoneError(f"manifest special_tokens lacks {exc.args[0]!r}; re-export the model") from None


class WhisperTokenizer:
    """Decodes text token ids (those below `eot`); control tokens are never shown to the user."""

    def __init__(self, path: Path, special: SpecialTokens):
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise SubtoneError(f"tokenizer file {path} could not be read ({exc}); expected Whisper's tokenizer.json") from None
        self.special = special

    def decode(self, ids: Sequence[int]) -> str:
        """Text of the text tokens; a character cut in half by the last token (a Hangul syllable is
        three bytes, often two tokens) is left out rather than shown as "\ufffd"."""
        return self._tokenizer.decode([i for i in ids if i < self.special.eot]).rstrip("\ufffd").strip()

    def token_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids
