"""Emotion model factory, fast parts: label policy, speaker split, level-invariant front end, metrics, CLI errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import EMOTION_DATA
from subtone.export.emotion.data import (
    LABELS, SPLIT_FILE, load_manifest, load_split, make_split, map_label, trim_silence,
)
from subtone.export.emotion.frontend import LogMelFrontEnd
from subtone.export.emotion.metrics import gain_stability, summary
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError
from subtone.service.events import EMOTIONS

MANIFEST = EMOTION_DATA / "manifest.csv"


def test_training_targets_are_read_back_as_the_same_labels_by_the_runtime(tmp_path):
    """Training teaches output i for a clip (`Clip.target`); the runtime names output i EMOTIONS[i]."""
    rows = [f"{i}.flac,ravdess,ravdess:01,female,{label}" for i, label in enumerate([*EMOTIONS, "calm", "surprise"])]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,dataset,speaker,sex,emotion\n" + "\n".join(rows) + "\n")
    clips = load_manifest(manifest)
    assert [EMOTIONS[c.target] for c in clips] == [*EMOTIONS, "neutral"]


def test_the_runtime_refuses_a_model_whose_labels_are_in_another_order(tmp_path):
    """The export writes its label order into the manifest; a model trained with another order is refused,
    not read with its classes swapped."""
    from subtone.config import load_settings
    from subtone.service.emotion.recognizer import EmotionRecognizer
    from subtone.service.models.registry import ModelEntry

    swapped = [EMOTIONS[1], EMOTIONS[0], *EMOTIONS[2:]]
    entry = ModelEntry("emotion-old", "emotion", "emotion", {"model": "model.onnx"}, {}, tmp_path,
                       info={"labels": swapped, "sample_rate": 16_000})
    with pytest.raises(SubtoneError, match="in that order"):
        EmotionRecognizer.from_entry(entry, load_settings(overrides={"runtime.providers": ["cpu"]}))


def test_label_policy_merges_calm_and_drops_surprise():
    assert map_label("calm") == "neutral"
    assert map_label("Neutral") == "neutral"
    assert map_label("surprise") is None
    for label in LABELS:
        assert map_label(label) == label
    with pytest.raises(SubtoneError, match="unknown emotion label 'bored'"):
        map_label("bored")


def test_manifest_loading_applies_the_policy(shared_data):
    clips = load_manifest(MANIFEST)
    assert {c.label for c in clips} == set(LABELS)
    assert not any(c.source_label == "surprise" for c in clips)
    assert sum(c.source_label == "calm" and c.label == "neutral" for c in clips) == 160
    assert all(c.path.is_file() for c in clips[:: len(clips) // 20])


def test_manifest_errors_are_one_clear_line(tmp_path):
    with pytest.raises(SubtoneError, match="emotion manifest not found"):
        load_manifest(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,emotion\nx.flac,happy\n")
    with pytest.raises(SubtoneError, match="missing column"):
        load_manifest(bad)


def test_committed_split_holds_out_two_women_and_two_men_without_leakage(shared_data):
    clips = load_manifest(MANIFEST)
    split = load_split(SPLIT_FILE)
    assert split == make_split(clips), "the committed split is not what make_split gives (seed 0)"
    parts = [set(split.train), set(split.val), set(split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    sex = {c.speaker: (c.dataset, c.sex) for c in clips}
    assert sorted(sex[s] for s in split.test) == [("ravdess", "female")] * 2 + [("ravdess", "male")] * 2
    assert {"tess:OAF", "tess:YAF"} <= parts[0]
    assert parts[0] | parts[1] | parts[2] == set(sex)


def _clip() -> np.ndarray:
    return load_audio(EMOTION_DATA / "ravdess/Actor_16/03-01-05-02-01-01-16.flac")


def test_front_end_is_level_invariant(shared_data):
    """Scaling the waveform from −20 to +10 dB must not move the normalised features."""
    front = LogMelFrontEnd().eval()
    x = torch.from_numpy(_clip())[None]
    ref, mask = front(x)
    for gain_db in (-20.0, -10.0, 10.0):
        feats, m = front(x * 10 ** (gain_db / 20))
        assert torch.equal(m, mask)
        assert (feats - ref).abs().max().item() < 1e-3, f"features moved at {gain_db:+g} dB"
    # …whereas the raw log-mel does move, by 2·ln(g): the invariance comes from the normalisation.
    raw = lambda w: torch.log(front.power_spectrum(w) @ front.mel + 1e-10)  # noqa: E731
    assert (raw(x * 10.0) - raw(x)).median().item() == pytest.approx(2 * np.log(10), abs=0.05)


def test_front_end_masks_silence_and_padding(shared_data):
    front = LogMelFrontEnd().eval()
    clip = _clip()
    padded = np.concatenate([clip, np.zeros(16_000, np.float32)])
    feats, mask = front(torch.from_numpy(padded)[None])
    assert mask[0, -90:].sum() == 0, "a second of digital silence should be outside the mask"
    assert feats[0, :, -90:].abs().max() == 0


def test_fft_and_convolution_front_ends_agree():
    front = LogMelFrontEnd().eval()
    x = torch.randn(2, 12_345) * 0.1
    a, _ = front(x)
    front.use_fft = False
    b, _ = front(x)
    assert (a - b).abs().max().item() < 1e-4


def test_trim_silence_is_level_independent(shared_data):
    clip = _clip()
    assert trim_silence(clip).size == trim_silence(clip * 0.01).size < clip.size


def test_metrics_on_a_known_case():
    s = summary([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ("a", "b", "c"))
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert s["per_class_f1"]["b"] == pytest.approx(0.8)
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    preds = {0.0: np.array([1, 2, 3]), 10.0: np.array([1, 2, 0])}
    assert gain_stability(preds, (0.0, 10.0)) == pytest.approx(2 / 3)


@pytest.mark.parametrize("command", [["train", "emotion", "--manifest"], ["eval", "emotion"]])
def test_cli_names_a_missing_manifest(tmp_path, command):
    missing = str(tmp_path / "nope.csv")
    proc = subprocess.run([sys.executable, "-m", "subtone.service.cli.main", *command, missing],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"subtone: emotion manifest not found: {missing} (expected a manifest.csv like ../shared/data/emotion/manifest.csv)"
    ]


def test_ensemble_averages_member_probabilities_over_one_front_end():
    from subtone.export.emotion.frontend import FrontEndConfig
    from subtone.export.emotion.model import EmotionCNN, EmotionEnsemble, ModelConfig

    cfg = ModelConfig(channels=8, embed=8, hidden=8)
    torch.manual_seed(0)
    members = [EmotionCNN(cfg).eval() for _ in range(3)]
    ensemble = EmotionEnsemble(members).eval()
    wave = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(wave), -1) for m in members]).mean(0)
        got = ensemble.probabilities(wave)
        single = torch.softmax(members[0](wave), -1)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, single, atol=1e-3)  # the members differ, so averaging is visible
    with pytest.raises(ValueError, match="front-end"):
        EmotionEnsemble([members[0], EmotionCNN(cfg, FrontEndConfig(n_mels=32))])


def test_a_single_model_checkpoint_from_before_the_ensemble_still_loads(tmp_path):
    from dataclasses import asdict

    from subtone.export.emotion.model import EmotionCNN, ModelConfig
    from subtone.export.emotion.train import load_trained

    cfg = ModelConfig(channels=8, embed=8, hidden=8)
    old = EmotionCNN(cfg).eval()
    torch.save({"state_dict": old.state_dict(), "model": asdict(cfg), "front": asdict(old.front.cfg)}, tmp_path / "model.pt")
    loaded = load_trained(tmp_path / "model.pt")
    wave = torch.randn(1, 8_000) * 0.1
    with torch.no_grad():
        assert len(loaded.members) == 1
        assert torch.allclose(loaded.probabilities(wave), torch.softmax(old(wave), -1), atol=1e-6)
