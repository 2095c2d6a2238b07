"""A broken int8 speech model falls back to its float32 sibling, and says so (real models, one file corrupted)."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from conftest import JFK
from subtone.config import load_settings
from subtone.export.evaluation.wer import word_errors
from subtone.service.app.controller import load_models
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError

JFK_TEXT = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture()
def models_with_a_broken_int8_encoder(tmp_path, whisper_model_dir):
    """A copy of the models folder (hard links, cheap) whose int8 encoder is overwritten with junk."""
    copy = tmp_path / "models"
    shutil.copytree(whisper_model_dir, copy, copy_function=os.link, ignore=shutil.ignore_patterns(".*"))
    broken = copy / "whisper-tiny.en" / "encoder.int8.onnx"
    broken.unlink()  # a fresh file: never write through the hard link into the real model
    broken.write_bytes(b"not an onnx graph" * 100)
    return copy


def test_a_corrupt_int8_encoder_falls_back_to_float32_and_says_why(models_with_a_broken_int8_encoder, caplog):
    settings = load_settings(overrides={"models.dir": str(models_with_a_broken_int8_encoder),
                                        "asr.model": "whisper-tiny.en-int8", "emotion.enabled": False})
    with caplog.at_level(logging.ERROR):
        models = load_models(settings)
    assert models.transcriber.name == "whisper-tiny.en"
    assert "speech model 'whisper-tiny.en-int8' broken, using 'whisper-tiny.en'" in models.note
    assert any("encoder.int8.onnx" in r.getMessage() for r in caplog.records)
    text = models.transcriber.transcribe(load_audio(JFK)).text
    assert word_errors(JFK_TEXT, text).wer < 0.25


def test_a_broken_float32_model_has_no_sibling_and_stays_an_error(models_with_a_broken_int8_encoder):
    (models_with_a_broken_int8_encoder / "whisper-tiny.en" / "encoder.onnx").unlink()
    settings = load_settings(overrides={"models.dir": str(models_with_a_broken_int8_encoder),
                                        "asr.model": "whisper-tiny.en", "emotion.enabled": False})
    with pytest.raises(SubtoneError, match="encoder.onnx"):
        load_models(settings)
