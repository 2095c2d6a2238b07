"""Character error rate for Korean: spacing and punctuation do not count, letters and digits do."""

from __future__ import annotations

import pytest

from subtone.export.evaluation.cer import character_errors, scored_characters


def test_spacing_and_punctuation_are_not_errors():
    ref = "선거 결과 영국 국민들은 투표하였다."
    assert character_errors(ref, "선거결과 영국국민들은, 투표하였다").errors == 0


def test_a_wrong_syllable_is_one_substitution_and_counts_are_over_characters():
    counts = character_errors("할 수 있다", "할 수 없다")
    assert (counts.ref_words, counts.substitutions, counts.errors) == (4, 1, 1)
    assert counts.wer == pytest.approx(0.25)


def test_decomposed_hangul_is_composed_before_comparing():
    decomposed = "\u1112\u1161\u11ab"  # 한 as three jamo (NFD)
    assert scored_characters(decomposed) == ["한"]


def test_latin_letters_fold_case_and_digits_count():
    assert scored_characters("GPU 3개!") == ["g", "p", "u", "3", "개"]
    assert character_errors("64.5%", "육십사오").errors == 4  # 6 4 5 against 육 십 사 오: 3 substitutions, 1 insertion
