"""The scoring normalizer, word error rate, and bench/wer.py end to end."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEST_MODEL

from subtone.export.evaluation.text_normalize import normalize_english
from subtone.export.evaluation.wer import (
    DELETION,
    HIT,
    INSERTION,
    SUBSTITUTION,
    ErrorCounts,
    align,
    count_errors,
    format_alignment,
    word_errors,
)

from .conftest import ASR_DEV, JFK, REPO


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("And so, my fellow Americans: ask NOT!", "and so my fellow americans ask not"),
        ("Mr. Dashwood and Mrs. Smith", "mister dashwood and missus smith"),
        ("the \u201clower-case\u201d letters", "the lower case letters"),
        ("Lübeck", "lubeck"),
        ("um, I think, uh, yes", "i think yes"),
        # contractions expand; possessives lose only the apostrophe
        ("I don't know, it's Smith's car", "i do not know it is smiths car"),
        ("we can't, they won't; I'm sure you're right", "we can not they will not i am sure you are right"),
        ("we've seen, he'll go, she'd say, let's try", "we have seen he will go she would say let us try"),
        ("It\u2019s here", "it is here"),
        # numbers become digits
        ("in fourteen sixty-five", "in 1465"),
        ("in 1465,", "in 1465"),
        ("nineteen oh five", "1905"),
        ("nineteen hundred", "1900"),
        ("one hundred and five", "105"),
        ("two thousand and twenty-one", "2021"),
        ("one million two hundred thousand and one", "1200001"),
        ("1,000,000", "1000000"),
        ("a forty-two line Bible", "a 42 line bible"),
        ("three point five", "3.5"),
        ("2.5 percent", "2.5 percent"),
        ("one two three", "1 2 3"),
        ("the fifteenth century", "the 15th century"),
        ("the 15th century", "the 15th century"),
        ("twenty-first", "21st"),
        ("wait one second", "wait 1 second"),
        ("a hundred", "a hundred"),
        ("$5 & 50%", "5 dollars and 50 percent"),
        ("", ""),
    ],
)
def test_normalize_english(text: str, expected: str) -> None:
    assert normalize_english(text) == expected


def test_spoken_and_written_numbers_score_as_equal() -> None:
    pairs = [
        ("In fourteen sixty-five Sweynheim began", "In 1465, Sweynheim began"),
        ("the forty-two line Bible", "the 42-line Bible"),
        ("in the fifteenth century", "in the 15th century"),
        ("and mister john dashwood", "And Mr. John Dashwood"),
        ("He doesn't know", "he does not know."),
    ]
    for reference, hypothesis in pairs:
        assert word_errors(reference, hypothesis) == ErrorCounts(hits=len(normalize_english(reference).split()))


def test_alignment_names_each_error() -> None:
    aligned = align("a b c d".split(), "a x c d e".split())
    assert [w.op for w in aligned] == [HIT, SUBSTITUTION, HIT, HIT, INSERTION]
    assert format_alignment(aligned) == "a [b→x] c d [+e]"
    aligned = align("the cat sat on the mat".split(), "the sat on mat".split())
    assert [w.op for w in aligned].count(DELETION) == 2
    assert format_alignment(aligned) == "the [-cat] sat on [-the] mat"


def test_counts_and_rates() -> None:
    assert count_errors("a b c".split(), "a b c".split()) == ErrorCounts(hits=3)
    counts = count_errors("a b c d".split(), "a x c d e".split())
    assert counts == ErrorCounts(hits=3, substitutions=1, insertions=1)
    assert counts.wer == pytest.approx(2 / 4)
    assert count_errors("a b".split(), []).wer == 1.0
    assert count_errors([], []).wer == 0.0
    assert count_errors([], ["x"]).wer == 1.0
    # corpus WER weighs by reference length: (1 + 0) / (1 + 9), not the mean of 100 % and 0 %
    corpus = sum([count_errors(["a"], ["b"]), count_errors(list("abcdefghi"), list("abcdefghi"))])
    assert corpus.wer == pytest.approx(0.1)


def test_substitution_preferred_to_deletion_plus_insertion() -> None:
    assert count_errors(["a"], ["b"]) == ErrorCounts(substitutions=1)


def test_matches_jiwer_on_random_sentences() -> None:
    jiwer = pytest.importorskip("jiwer", reason="jiwer is only a cross-check")
    rng = random.Random(7)
    vocab = "the a cat dog sat on mat ran".split()
    for _ in range(300):
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        ours = count_errors(ref, hyp)
        theirs = jiwer.process_words(" ".join(ref), " ".join(hyp) or "")
        assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions
        assert ours.wer == pytest.approx(theirs.wer)


def _manifest(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "wer.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )


def test_bench_wer_rejects_a_bad_manifest_in_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"audio": "a.wav"}\n', encoding="utf-8")
    result = _run_bench("--manifest", str(manifest))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "manifest.jsonl:1" in result.stderr and "'text'" in result.stderr


@pytest.mark.slow
def test_bench_wer_scores_two_clips_per_source(tmp_path: Path, whisper_model_dir: Path) -> None:
    librivox = ASR_DEV / "en" / "pocketsphinx_librivox" / "sense_and_sensibility_01_austen_64kb-0880.flac"
    manifest = _manifest(tmp_path, [
        {"audio": os.path.relpath(JFK, tmp_path),
         "text": "And so, my fellow Americans, ask not what your country can do for you, "
                 "ask what you can do for your country."},
        {"audio": os.path.relpath(librivox, tmp_path), "text": "he was not an ill disposed young man",
         "corpus": "librivox"},
    ])
    out = tmp_path / "wer.json"
    result = _run_bench("--manifest", str(manifest), "--compare-trim", "--json", str(out),
                        "--set", f"models.dir={json.dumps(str(whisper_model_dir))}", "--model", TEST_MODEL)
    assert result.returncode == 0, result.stderr
    assert "whisper_jfk" in result.stdout and "librivox" in result.stdout and "TOTAL" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["variants"]) == {"trim_encoder=on", "trim_encoder=off"}
    for variant in report["variants"].values():
        assert set(variant["sources"]) == {"whisper_jfk", "librivox", "TOTAL"}
        assert variant["sources"]["TOTAL"]["ref_words"] == 22 + 8
        # tiny.en gets both clips (nearly) right; a broken decoder or normalizer would not
        assert variant["sources"]["TOTAL"]["wer"] <= 0.1
        assert "country" in variant["clips"][0]["hypothesis"].lower()
