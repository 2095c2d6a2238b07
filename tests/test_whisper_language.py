"""Language choice for multilingual Whisper: detection smoothing, prompts, settings a model cannot honour,
and Hangul cut in half by a token boundary."""

from __future__ import annotations

import numpy as np
import pytest

from subtone.service.asr.whisper.language import LanguageSmoother, LanguageTokens
from subtone.service.asr.whisper.tokenizer import SpecialTokens, WhisperTokenizer
from subtone.service.errors import SubtoneError

MULTI = LanguageTokens({"en": 50259, "ko": 50264, "ja": 50266}, 50258, 50363, {"transcribe": 50359, "translate": 50358})
ENGLISH_ONLY = LanguageTokens({}, 50257, 50362, {"transcribe": 50358, "translate": 50357})


def test_the_first_utterance_takes_the_top_language():
    guess = LanguageSmoother().choose({"ko": 0.55, "en": 0.3, "ja": 0.15})
    assert (guess.code, guess.prob) == ("ko", 0.55)


def test_a_weak_guess_for_another_language_keeps_the_conversations_language():
    smoother = LanguageSmoother()
    smoother.choose({"ko": 0.9, "en": 0.1})
    guess = smoother.choose({"ja": 0.5, "ko": 0.4, "en": 0.1})  # a short "네" that sounded Japanese
    assert guess.code == "ko" and guess.prob == 0.4


def test_strong_evidence_switches_at_once_and_repeated_weak_evidence_switches_on_the_second():
    smoother = LanguageSmoother()
    smoother.choose({"ko": 0.9, "en": 0.1})
    assert smoother.choose({"en": 0.95, "ko": 0.05}).code == "en"
    smoother.choose({"ko": 0.5, "en": 0.45})
    assert smoother.recent == "en"  # one weak Korean guess: still English
    assert smoother.choose({"ko": 0.6, "en": 0.4}).code == "ko"  # the second in a row: Korean


def test_partials_do_not_move_the_conversations_language():
    smoother = LanguageSmoother()
    smoother.choose({"ko": 0.9, "en": 0.1})
    for _ in range(3):
        assert smoother.choose({"en": 0.6, "ko": 0.4}, commit=False).code == "ko"
    assert smoother.recent == "ko"


def test_probabilities_cover_language_tokens_only_and_prompts_name_language_and_task():
    logits = np.zeros(51865, np.float32)
    logits[50264] = 5.0  # ko
    logits[220] = 50.0  # a text token must not count
    probs = MULTI.probabilities(logits)
    assert set(probs) == {"en", "ko", "ja"} and max(probs, key=probs.get) == "ko"
    assert sum(probs.values()) == pytest.approx(1.0)
    assert MULTI.prompt("ko", "translate") == (50258, 50264, 50358, 50363)


def test_settings_a_model_cannot_honour_are_one_clear_error():
    ENGLISH_ONLY.check("whisper-tiny.en", "auto", "transcribe", ("en",))
    ENGLISH_ONLY.check("whisper-tiny.en", "en", "transcribe", ("en",))
    with pytest.raises(SubtoneError, match="understands only 'en'.*whisper-base"):
        ENGLISH_ONLY.check("whisper-tiny.en", "ko", "transcribe", ("en",))
    with pytest.raises(SubtoneError, match="only transcribes"):
        ENGLISH_ONLY.check("whisper-tiny.en", "auto", "translate", ("en",))
    MULTI.check("whisper-base", "ko", "translate", ("en", "ko", "ja"))
    with pytest.raises(SubtoneError, match="asr.language 'xx'"):
        MULTI.check("whisper-base", "xx", "transcribe", ("en", "ko", "ja"))
    with pytest.raises(SubtoneError, match="asr.task 'summarize'"):
        MULTI.check("whisper-base", "auto", "summarize", ("en", "ko", "ja"))


def test_a_hangul_syllable_cut_by_the_last_token_is_not_shown_half_built(whisper_model_dir):
    special = SpecialTokens(eot=50256, sot=50257, no_speech=50361, no_timestamps=50362, timestamp_begin=50363)
    tokenizer = WhisperTokenizer(whisper_model_dir / "whisper-tiny.en" / "tokenizer.json", special)
    ids = tokenizer.encode(" 안녕하세요")
    cut = [tokenizer.decode(ids[:n]) for n in range(1, len(ids) + 1)]
    assert cut[-1] == "안녕하세요"
    assert all("\ufffd" not in text and "안녕하세요".startswith(text) for text in cut)
