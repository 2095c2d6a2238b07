"""Word error rate from a Levenshtein alignment of reference and hypothesis words.

WER = (substitutions + deletions + insertions) / reference words. Corpus WER adds the counts
of every utterance first and divides once (`sum(counts, ErrorCounts())`), so long utterances
weigh more, as in every published WER.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from subtone.export.evaluation.text_normalize import normalize_english

HIT, SUBSTITUTION, DELETION, INSERTION = "=", "S", "D", "I"


@dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts for one utterance or, summed, for a corpus."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    """Reference words the hypothesis lacks."""
    insertions: int = 0
    """Hypothesis words the reference lacks."""

    @property
    def ref_words(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word; for an empty reference, 0.0 if nothing was inserted, else 1.0."""
        if self.ref_words == 0:
            return 0.0 if self.insertions == 0 else 1.0
        return self.errors / self.ref_words

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )

    def __radd__(self, other: object) -> "ErrorCounts":
        if other == 0:  # lets sum() start from its default 0
            return self
        return NotImplemented


@dataclass(frozen=True)
class AlignedWord:
    op: str
    """HIT, SUBSTITUTION, DELETION or INSERTION."""
    ref: str | None
    hyp: str | None


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[AlignedWord]:
    """A minimum-edit alignment; on ties a substitution is preferred to a deletion plus an insertion."""
    n, m = len(ref), len(hyp)
    # cost[i][j]: edits to turn ref[:i] into hyp[:j]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        r = ref[i - 1]
        for j in range(1, m + 1):
            diagonal = prev[j - 1] + (r != hyp[j - 1])
            row[j] = min(diagonal, prev[j] + 1, row[j - 1] + 1)
    out: list[AlignedWord] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            op = HIT if ref[i - 1] == hyp[j - 1] else SUBSTITUTION
            out.append(AlignedWord(op, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            out.append(AlignedWord(DELETION, ref[i - 1], None))
            i -= 1
        else:
            out.append(AlignedWord(INSERTION, None, hyp[j - 1]))
            j -= 1
    out.reverse()
    return out


def count_errors(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    ops = [a.op for a in align(ref, hyp)]
    return ErrorCounts(
        hits=ops.count(HIT),
        substitutions=ops.count(SUBSTITUTION),
        deletions=ops.count(DELETION),
        insertions=ops.count(INSERTION),
    )


def word_errors(
    reference: str,
    hypothesis: str,
    normalize: Callable[[str], str] = normalize_english,
) -> ErrorCounts:
    """Counts after normalizing both texts (see subtone.export.evaluation.text_normalize)."""
    return count_errors(normalize(reference).split(), normalize(hypothesis).split())


def format_alignment(aligned: Sequence[AlignedWord]) -> str:
    """One line for reading errors: hits as words, errors as [ref→hyp], [-ref], [+hyp]."""
    parts = []
    for a in aligned:
        if a.op == HIT:
            parts.append(a.ref)
        elif a.op == SUBSTITUTION:
            parts.append(f"[{a.ref}→{a.hyp}]")
        elif a.op == DELETION:
            parts.append(f"[-{a.ref}]")
        else:
            parts.append(f"[+{a.hyp}]")
    return " ".join(parts)
