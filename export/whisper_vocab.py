"""Whisper's control-token ids and language tokens, read from a CTranslate2 model's vocabulary.

English-only and multilingual Whisper share GPT-2's text tokens but place the control tokens
differently (tiny.en: eot 50256, sot 50257; multilingual: eot 50257, sot 50258, and one more
language token), so the ids are looked up by name instead of being hard-coded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

from subtone.service.errors import SubtoneError

# Our name → the token's text; `no_speech` was called <|nocaptions|> in the first releases.
_CONTROL_TOKENS = {
    "eot": ("<|endoftext|>",),
    "sot": ("<|startoftranscript|>",),
    "translate": ("<|translate|>",),
    "transcribe": ("<|transcribe|>",),
    "sot_lm": ("<|startoflm|>",),
    "sot_prev": ("<|startofprev|>",),
    "no_speech": ("<|nospeech|>", "<|nocaptions|>"),
    "no_timestamps": ("<|notimestamps|>",),
}
_LANGUAGE = re.compile(r"<\|([a-z]{2,3})\|>")
MULTILINGUAL_VOCAB = 51865
"""Whisper's own test: a vocabulary this large (or larger) is a multilingual model's."""


def read_vocabulary(model_dir: Path) -> list[str]:
    """Token texts by id, from the vocabulary.json or vocabulary.txt CTranslate2 writes beside model.bin."""
    as_json, as_text = model_dir / "vocabulary.json", model_dir / "vocabulary.txt"
    if as_json.is_file():
        return list(json.loads(as_json.read_text(encoding="utf-8")))
    if as_text.is_file():
        # One token per line; byte-level BPE tokens never contain a newline themselves.
        return as_text.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    raise SubtoneError(f"{model_dir} has no vocabulary.json or vocabulary.txt; expected a CTranslate2 Whisper model")


def special_tokens(vocabulary: Sequence[str]) -> dict[str, int]:
    """Ids of the control tokens and of the first timestamp token (<|0.00|>)."""
    ids = {text: i for i, text in enumerate(vocabulary) if text.startswith("<|")}
    found: dict[str, int] = {}
    for name, texts in _CONTROL_TOKENS.items():
        hit = next((ids[t] for t in texts if t in ids), None)
        if hit is None:
            raise SubtoneError(f"the vocabulary has no {texts[0]} token; not a Whisper vocabulary")
        found[name] = hit
    # Timestamps follow <|notimestamps|>; some vocabularies leave them unnamed (padding).
    found["timestamp_begin"] = ids.get("<|0.00|>", found["no_timestamps"] + 1)
    return found


def language_tokens(vocabulary: Sequence[str], special: dict[str, int]) -> dict[str, int]:
    """Language code → token id: the <|xx|> tokens between <|startoftranscript|> and <|translate|>."""
    langs: dict[str, int] = {}
    for i in range(special["sot"] + 1, special["translate"]):
        match = _LANGUAGE.fullmatch(vocabulary[i])
        if match is None:
            raise SubtoneError(f"token {i} ({vocabulary[i]!r}) sits among the language tokens; unknown vocabulary layout")
        langs[match.group(1)] = i
    return langs


def is_multilingual(n_vocab: int) -> bool:
    return n_vocab >= MULTILINGUAL_VOCAB
