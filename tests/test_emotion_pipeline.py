"""Emotion pipeline end to end on a tiny model (a few real clips, seconds): split, training run folder,
report files, ONNX export parity, runtime classification equal to PyTorch, `subtone eval emotion`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import EMOTION_DATA
from emotion_fixtures import TINY_TRAIN, tiny_manifest
from subtone.config import load_settings
from subtone.export.emotion import train
from subtone.export.emotion.data import load_clip_audio, load_manifest, make_split, save_split
from subtone.export.emotion.onnx_export import export_run
from subtone.service.emotion.recognizer import EmotionRecognizer
from subtone.service.events import EMOTIONS
from subtone.service.models.registry import load_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_emotion(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("emotion")
    manifest = tiny_manifest(EMOTION_DATA, root / "manifest.csv")
    clips = load_manifest(manifest)
    split = make_split(clips, test_per_sex=1, val_per_sex=1)
    save_split(split, root / "split.json")
    metrics = train.run(manifest, root / "run", TINY_TRAIN, split_path=root / "split.json", progress=False)
    models = root / "models"
    test_clips = split.part(clips, "test")
    exported = export_run(root / "run", models, check_waves=load_clip_audio(test_clips[:4], trim=False))
    return {"root": root, "manifest": manifest, "clips": clips, "split": split, "metrics": metrics,
            "models": models, "exported": exported, "test_clips": test_clips}


def test_split_has_no_speaker_in_two_parts(tiny_emotion):
    split = tiny_emotion["split"]
    assert not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)
    assert not set(split.train) & set(split.val)
    assert {c.speaker for c in tiny_emotion["test_clips"]} == set(split.test)


def test_run_folder_has_config_metrics_and_plots(tiny_emotion):
    run = tiny_emotion["root"] / "run"
    for name in ("config.json", "metrics.json", "model.pt", "training.png",
                 "test/metrics.json", "test/confusion.png", "test/gain_sweep.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    config = json.loads((run / "config.json").read_text())
    assert config["split"]["test"] == list(tiny_emotion["split"].test)
    report = json.loads((run / "test/metrics.json").read_text())
    assert report["n"] == len(tiny_emotion["test_clips"])
    assert set(report["gain_sweep"]["histogram"]) == {"-20", "-10", "+0", "+10"}
    assert all(sum(h) == report["n"] for h in report["gain_sweep"]["histogram"].values())
    assert len(tiny_emotion["metrics"]["history"]) == TINY_TRAIN.epochs


def test_onnx_export_matches_pytorch_and_is_registered(tiny_emotion):
    exported = tiny_emotion["exported"]
    assert exported["parity"] < 1e-4
    entry = load_model(tiny_emotion["models"], "emotion-cnn")  # sha256 verified
    assert entry.family == "emotion" and entry.task == "emotion"
    assert entry.info["labels"] == list(EMOTIONS) and entry.info["sample_rate"] == 16_000
    card = (tiny_emotion["models"] / "emotion-cnn" / "MODEL_CARD.md").read_text()
    assert "NON-COMMERCIAL" in card and "CC BY-NC-SA 4.0" in card and "CC BY-NC-ND 4.0" in card


def test_runtime_gives_the_same_probabilities_as_torch(tiny_emotion):
    settings = load_settings(None, {"runtime.providers": ["cpu"]})
    recognizer = EmotionRecognizer.from_entry(load_model(tiny_emotion["models"], "emotion-cnn"), settings)
    model = train.load_trained(tiny_emotion["root"] / "run" / "model.pt")
    waves = load_clip_audio(tiny_emotion["test_clips"][:3], trim=False)
    ref = train.predict_proba(model, waves)
    for wave, expected in zip(waves, ref):
        result = recognizer.classify(wave)
        got = np.array([result.scores[label] for label in EMOTIONS])
        assert np.abs(got - expected).max() < 1e-4
        top2 = np.sort(expected)[-2:]
        if top2[1] - top2[0] > 1e-4:  # a near-tie of the barely trained model may flip either way
            assert result.label == EMOTIONS[int(expected.argmax())]
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_eval_cli_writes_a_report(tiny_emotion, tmp_path):
    from subtone.export.commands import main

    out = tmp_path / "report"
    onnx = tiny_emotion["models"] / "emotion-cnn" / "model.onnx"
    assert main(["eval", "emotion", str(tiny_emotion["manifest"]), "--model", str(onnx), "--speakers", "all",
                 "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["n"] == len(tiny_emotion["clips"])
    assert (out / "confusion.png").is_file() and (out / "gain_sweep.png").is_file()


def test_torch_seeds_make_training_repeatable(tiny_emotion):
    torch.manual_seed(0)
    a = train.load_trained(tiny_emotion["root"] / "run" / "model.pt").state_dict()
    again = train.run(tiny_emotion["manifest"], tiny_emotion["root"] / "run2", TINY_TRAIN,
                      split_path=tiny_emotion["root"] / "split.json", progress=False)
    b = train.load_trained(tiny_emotion["root"] / "run2" / "model.pt").state_dict()
    assert again["history"][-1]["loss"] == pytest.approx(tiny_emotion["metrics"]["history"][-1]["loss"], rel=1e-5)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_without_train_on_val_the_val_speakers_only_select_the_epoch(tiny_emotion, tmp_path):
    from dataclasses import replace

    cfg = replace(TINY_TRAIN, members=1, train_on_val=False)
    out = train.run(tiny_emotion["manifest"], tmp_path / "run", cfg, split_path=tiny_emotion["root"] / "split.json", progress=False)
    history = out["history"]
    assert all("val_macro_f1" in row for row in history)
    best = max(range(len(history)), key=lambda i: (history[i]["val_macro_f1"], i)) + 1
    assert out["members"][0]["best_epoch"] == best
    assert len(train.load_trained(tmp_path / "run" / "model.pt").members) == 1
