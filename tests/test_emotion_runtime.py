"""The shipped emotion model through the runtime: registry (sha256 verified), held-out clips, short/silent
input, and `subtone transcribe` with emotion shown, or warned about when the model is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import EMOTION_DATA, JFK, TEST_MODEL
from subtone.config.settings import project_models_dir
from subtone.export.emotion.data import SPLIT_FILE, load_manifest, load_split
from subtone.service.audio.file import load_audio
from subtone.service.emotion.recognizer import EmotionResult, describe, too_little_signal
from subtone.service.events import EMOTIONS
from subtone.service.models.registry import load_model


@pytest.fixture(scope="module")
def held_out_actor(shared_data):
    """All clips of one held-out actor: never seen in training or model selection."""
    split = load_split(SPLIT_FILE)
    clips = [c for c in load_manifest(EMOTION_DATA / "manifest.csv") if c.speaker == split.test[0]]
    return clips, [load_audio(c.path) for c in clips]


def test_shipped_model_is_small_and_registered(shipped_emotion):
    entry = load_model(project_models_dir(), "emotion-cnn")
    assert entry.family == "emotion" and entry.info["labels"] == list(EMOTIONS)
    assert entry.path("model").stat().st_size <= 5 * 1024 * 1024
    assert "NON-COMMERCIAL" in (entry.root / entry.info["model_card"]).read_text()


def test_shipped_model_recognises_a_held_out_speaker(shipped_emotion, held_out_actor):
    clips, waves = held_out_actor
    results = [shipped_emotion.classify(w) for w in waves]
    assert all(isinstance(r, EmotionResult) for r in results)
    for r in results[:5]:
        assert list(r.scores) == list(EMOTIONS)
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.probability == max(r.scores.values())
    accuracy = np.mean([r.label == c.label for r, c in zip(results, clips)])
    assert accuracy >= 0.60, f"{accuracy:.0%} on {clips[0].speaker} (73 % when shipped); always-neutral scores 23 %"


def test_louder_or_quieter_input_keeps_the_label(shipped_emotion, held_out_actor):
    _, waves = held_out_actor
    for wave in waves[::6]:
        labels = {shipped_emotion.classify(wave * 10 ** (g / 20)).label for g in (-20, 0, 10)}
        assert len(labels) == 1


def test_short_or_silent_input_has_no_emotion(shipped_emotion):
    assert too_little_signal(np.zeros(16_000, np.float32))
    assert too_little_signal(np.full(3_000, 0.3, np.float32))
    assert shipped_emotion.classify(np.zeros(32_000, np.float32)) is None
    assert shipped_emotion.classify(np.zeros(0, np.float32)) is None
    assert shipped_emotion.classify(np.random.default_rng(0).standard_normal(1_000).astype(np.float32)) is None
    assert describe(None) == ""


def test_bad_samples_do_not_crash(shipped_emotion):
    noisy = np.random.default_rng(1).standard_normal(16_000).astype(np.float32) * 0.1
    noisy[100] = np.nan
    assert isinstance(shipped_emotion.classify(noisy), EmotionResult)


def _transcribe(*args: str, config=None) -> subprocess.CompletedProcess:
    top = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "subtone.service.cli.main", *top, "transcribe", "--model", TEST_MODEL, *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_transcribe_shows_emotion_beside_the_text(whisper_model_dir, shipped_emotion):
    proc = _transcribe("--json", str(JFK))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.splitlines()[0])
    assert row["emotion"] in EMOTIONS
    assert list(row["emotion_scores"]) == list(EMOTIONS)
    assert sum(row["emotion_scores"].values()) == pytest.approx(1.0, abs=1e-3)
    text = _transcribe(str(JFK))
    assert text.returncode == 0
    assert isinstance(row["emotion_uncertain"], bool)
    # An unsure label keeps its word but says so ("happy?"), the same as the overlay.
    word = row["emotion"] + ("?" if row["emotion_uncertain"] else "")
    assert text.stdout.strip().endswith(f"[{word} {row['emotion_scores'][row['emotion']]:.0%}]")


@pytest.mark.slow
def test_transcribe_warns_once_and_still_prints_text_without_the_emotion_model(whisper_model_dir, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[emotion]\nmodel = "emotion-missing"\n')
    proc = _transcribe(str(JFK), config=config)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "emotion" in line]
    assert len(warnings) == 1 and warnings[0].startswith("subtone: warning: no emotion shown: model 'emotion-missing'")
    assert "country" in proc.stdout and "[" not in proc.stdout
