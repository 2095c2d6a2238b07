"""Which language Whisper hears, and the decoder prompt that follows from it.

A multilingual Whisper model is told the language and the task in its prompt:
[<|startoftranscript|>, <|ko|>, <|transcribe|> or <|translate|>, <|notimestamps|>]. With
`language = "auto"` the language comes from the decoder's first step (the distribution over
language tokens after <|startoftranscript|>), as in OpenAI's `detect_language`. Short
utterances are where detection fails ("네" or "OK" could be anything), so LanguageSmoother keeps
the conversation's recent language unless the evidence for another one is strong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from subtone.service.errors import SubtoneError

TASKS = ("transcribe", "translate")
STRONG_PROB = 0.75
"""A new language wins at once with at least this probability …"""
SWITCH_MARGIN = 0.4
"""… and this much more than the recent language."""
SWITCH_STREAK = 2
"""Or when it is the top guess this many finals in a row."""


@dataclass(frozen=True)
class LanguageGuess:
    code: str
    prob: float
    """The model's probability for `code` (1.0 when the language is fixed by the settings)."""


@dataclass(frozen=True)
class LanguageTokens:
    """Token ids of a model's languages and tasks; `codes` is empty for an English-only model."""

    codes: Mapping[str, int]
    sot: int
    no_timestamps: int
    tasks: Mapping[str, int]

    @property
    def multilingual(self) -> bool:
        return len(self.codes) > 1

    def prompt(self, language: str, task: str) -> tuple[int, ...]:
        return (self.sot, self.codes[language], self.tasks[task], self.no_timestamps)

    def probabilities(self, logits: np.ndarray) -> dict[str, float]:
        """P(language) from the logits after <|startoftranscript|>, over language tokens only."""
        ids = np.fromiter(self.codes.values(), dtype=np.int64)
        chosen = logits[ids].astype(np.float64)
        p = np.exp(chosen - chosen.max())
        p /= p.sum()
        return dict(zip(self.codes, p.tolist()))

    def check(self, model: str, language: str, task: str, languages: tuple[str, ...]) -> None:
        """A setting the model cannot honour is one clear error naming what it can do."""
        if task not in TASKS:
            raise SubtoneError(f"asr.task '{task}': expected one of {', '.join(TASKS)}")
        if not self.multilingual:
            spoken = languages[0] if languages else "en"
            if language not in ("auto", spoken) or task != "transcribe":
                raise SubtoneError(
                    f"model '{model}' understands only '{spoken}' and only transcribes (asked: language "
                    f"'{language}', task '{task}'); choose a multilingual model such as whisper-base"
                )
            return
        if language != "auto" and language not in self.codes:
            raise SubtoneError(
                f"asr.language '{language}': model '{model}' knows {len(self.codes)} languages "
                f"(e.g. {', '.join(list(self.codes)[:8])}, …) or 'auto'"
            )


class LanguageSmoother:
    """Per conversation: the language to use for each utterance, given the model's probabilities."""

    def __init__(self) -> None:
        self.recent: str | None = None
        self._challenger: str | None = None
        self._streak = 0

    def choose(self, probs: Mapping[str, float], commit: bool = True) -> LanguageGuess:
        """The language for this utterance; `commit` (finals) lets it change the recent language."""
        top = max(probs, key=probs.__getitem__)
        recent = self.recent
        if recent is None or top == recent:
            chosen = top
        elif probs[top] >= STRONG_PROB and probs[top] - probs.get(recent, 0.0) >= SWITCH_MARGIN:
            chosen = top
        elif commit and self._challenger == top and self._streak + 1 >= SWITCH_STREAK:
            chosen = top
        else:
            chosen = recent
        if commit:
            self._remember(top, chosen)
        return LanguageGuess(chosen, float(probs.get(chosen, 0.0)))

    def _remember(self, top: str, chosen: str) -> None:
        if top != chosen:
            self._streak = self._streak + 1 if top == self._challenger else 1
            self._challenger = top
        else:
            self._challenger, self._streak = None, 0
        self.recent = chosen


def language_tokens(special: Mapping[str, int], token_id, codes: tuple[str, ...]) -> LanguageTokens:
    """From the manifest's special tokens and language codes; `token_id(str) -> int | None` is the tokenizer's."""
    ids: dict[str, int] = {}
    for code in codes if len(codes) > 1 else ():
        tid = token_id(f"<|{code}|>")
        if tid is None:
            raise SubtoneError(f"the tokenizer has no token for language '{code}'; re-export the model")
        ids[code] = int(tid)
    tasks = {task: int(special[task]) for task in TASKS if task in special}
    return LanguageTokens(ids, int(special["sot"]), int(special["no_timestamps"]), tasks)
