"""The ONNX Whisper recognizer: token ids equal ctranslate2's, silence guard, long audio, reuse."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import ASR_DEV, JFK
from subtone.config import load_settings
from subtone.export.whisper_export import wheel_model_dir
from subtone.service.audio.file import load_audio
from subtone.service.models.registry import load_model
from subtone.service.asr.recognizer import create_recognizer
from subtone.service.asr.whisper.frontend import CHUNK_FRAMES, log_mel

pytestmark = pytest.mark.slow
JFK_WORDS = "ask not what your country can do for you"


def _recognizer(models_dir, name="whisper-tiny.en", **whisper):
    """Whisper with [asr.whisper] settings changed as given."""
    settings = load_settings(overrides={"models.dir": str(models_dir), "runtime.providers": ["cpu"]})
    asr = dataclasses.replace(settings.asr, whisper=dataclasses.replace(settings.asr.whisper, **whisper))
    return create_recognizer(load_model(models_dir, name), dataclasses.replace(settings, asr=asr))


@pytest.fixture(scope="module")
def recognizer(whisper_model_dir):
    return _recognizer(whisper_model_dir, trim_encoder=False)


@pytest.fixture(scope="module")
def ct2_whisper():
    ctranslate2 = pytest.importorskip("ctranslate2")
    return ctranslate2.models.Whisper(str(wheel_model_dir()), device="cpu", compute_type="float32")


@pytest.mark.parametrize("clip", [JFK, ASR_DEV / "en" / "ljspeech" / "LJ001-0001.flac"], ids=["jfk", "lj001"])
def test_token_ids_equal_ctranslate2(recognizer, ct2_whisper, clip):
    """Same log-mel into both; greedy, no timestamps, suppressed tokens as ctranslate2 does."""
    import ctranslate2

    mel = np.ascontiguousarray(log_mel(load_audio(clip))[None, :, :CHUNK_FRAMES])
    ref = ct2_whisper.generate(
        ctranslate2.StorageView.from_array(mel),
        [[50257, 50362]],
        beam_size=1,
        suppress_blank=True,
        suppress_tokens=[-1],
        max_length=448,
        return_no_speech_prob=True,
    )[0]
    ours = recognizer.decode_mel(mel)
    assert len(ours.tokens) > 10
    assert list(ours.tokens) == ref.sequences_ids[0]
    assert ours.no_speech_prob == pytest.approx(ref.no_speech_prob, abs=1e-4)


def test_jfk_text_and_transcript_fields(recognizer):
    result = recognizer.transcribe(load_audio(JFK))
    assert JFK_WORDS in result.text.lower()
    assert all(t < 50256 for t in result.tokens)
    assert -1.0 < result.avg_logprob < 0.0 and result.no_speech_prob < 0.2
    # Reused sessions and buffers: a second call gives the very same answer.
    assert recognizer.transcribe(load_audio(JFK)) == result


@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-tiny.en-int8"])
def test_trimmed_encoder_and_int8_still_transcribe(whisper_model_dir, name):
    result = _recognizer(whisper_model_dir, name, trim_encoder=True).transcribe(load_audio(JFK))
    assert JFK_WORDS in result.text.lower().replace(",", "")


def test_silence_and_noise_give_no_text(recognizer):
    rng = np.random.default_rng(0)
    cases = {
        "empty": np.zeros(0, np.float32),
        "zeros": np.zeros(48_000, np.float32),
        "room hiss -70 dBFS": rng.standard_normal(48_000).astype(np.float32) * 10 ** (-70 / 20),
        "white noise -25 dBFS": rng.standard_normal(48_000).astype(np.float32) * 0.056,
        "white noise -40 dBFS": rng.standard_normal(48_000).astype(np.float32) * 0.01,
    }
    # Not covered: a steady tone (mains hum) gives Whisper's classic "you" with a confident
    # log-probability, which Whisper's own rule keeps; the live path's VAD filters steady sounds.
    for label, audio in cases.items():
        assert recognizer.transcribe(audio).text == "", label


def test_energy_gate_skips_the_models(recognizer, monkeypatch):
    """Silence under the gate never reaches the encoder (cheap for the live service)."""
    def fail(*_args, **_kwargs):
        raise AssertionError("encoder ran on gated silence")

    monkeypatch.setattr(recognizer, "decode_mel", fail)
    assert recognizer.transcribe(np.full(16_000, 1e-5, np.float32)).text == ""


def test_audio_over_30_s_is_windowed(recognizer):
    jfk = load_audio(JFK)
    gap = np.zeros(8_000, np.float32)
    audio = np.concatenate([jfk, gap, jfk, gap, jfk])  # 34 s: two windows
    text = recognizer.transcribe(audio).text.lower().replace(",", "")
    assert text.count("ask not what your country") >= 2
    assert text.rstrip(".").endswith("do for your country")


def test_max_tokens_caps_the_output(whisper_model_dir):
    result = _recognizer(whisper_model_dir, max_tokens=5).transcribe(load_audio(JFK))
    assert len(result.tokens) == 5


@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-tiny.en-int8"])
def test_trimmed_window_does_not_loop_on_clips_ending_at_the_last_word(whisper_model_dir, name):
    """Without enough trailing silence in the trimmed window, tiny.en repeated these phrases."""
    recognizer = _recognizer(whisper_model_dir, name, trim_encoder=True)
    for clip, words in [("LJ001-0002", "in being comparatively modern"), ("LJ001-0008", "has never been surpassed")]:
        text = recognizer.transcribe(load_audio(ASR_DEV / "en" / "ljspeech" / f"{clip}.flac")).text
        assert text.lower().strip(" .,").replace(",", "") == words, clip
