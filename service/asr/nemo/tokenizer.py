"""Token IDs → text for NeMo models: SentencePiece pieces or a character vocabulary (any script)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, Sequence

from subtone.service.errors import SubtoneError


class Detokenizer(Protocol):
    vocab_size: int

    def decode(self, ids: Sequence[int]) -> str:
        """Text for non-blank token IDs."""
        ...


class SentencePieceDetokenizer:
    """A NeMo BPE/Unigram tokenizer: the checkpoint's own SentencePiece model file."""

    def __init__(self, model_file: Path) -> None:
        import sentencepiece

        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        except (OSError, RuntimeError) as exc:
            raise SubtoneError(
                f"tokenizer file {model_file} could not be read ({exc}); expected a SentencePiece .model file"
            ) from None
        self.vocab_size = int(self._sp.get_piece_size())

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids])


class CharDetokenizer:
    """A NeMo character model: token i is the i-th label (letters, Hangul syllables, space, …)."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self.vocab_size = len(self.labels)

    @classmethod
    def from_file(cls, path: Path) -> "CharDetokenizer":
        try:
            labels = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SubtoneError(f"vocabulary file {path} could not be read ({exc}); expected a JSON list of labels") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise SubtoneError(f"vocabulary file {path} is not a JSON list of strings")
        return cls(labels)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.labels[i] for i in ids if 0 <= i < self.vocab_size)


def load_detokenizer(kind: str, path: Path) -> Detokenizer:
    if kind == "sentencepiece":
        return SentencePieceDetokenizer(path)
    if kind == "chars":
        return CharDetokenizer.from_file(path)
    raise SubtoneError(f"tokenizer kind '{kind}' is unknown (expected 'sentencepiece' or 'chars'); re-export the model")
