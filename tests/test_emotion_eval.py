"""`subtone eval emotion`: the pure parts (session order, accuracy-coverage, per-corpus metrics,
restricted argmax, narration, causal session runs) without models, and the real CLI on the
shipped head (emotion-whisper-base, its own Whisper base encoder) on a few real clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ASR_DEV, EMOTION_DATA
from subtone.config import load_settings
from subtone.export.emotion import eval_metrics as em
from subtone.export.emotion.eval_report import PREDICTION_COLUMNS
from subtone.export.emotion.eval_scoring import judge, load_eval_manifest
from subtone.service.emotion.recognizer import EmotionResult
from subtone.service.events import EMOTIONS

# -- pure parts -------------------------------------------------------------------------------


def test_coverage_curve_ranks_by_confidence_and_counts_the_top_k_percent():
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    correct = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    shuffle = np.array([3, 7, 0, 9, 5, 1, 8, 2, 6, 4])  # the curve must not depend on clip order
    curve = em.coverage_curve(confidence[shuffle], correct[shuffle])
    assert [p["coverage"] for p in curve] == pytest.approx([k / 10 for k in range(1, 11)])
    assert [p["n"] for p in curve] == list(range(1, 11))
    assert [p["accuracy"] for p in curve] == pytest.approx([1, 1, 2 / 3, 3 / 4, 3 / 5, 3 / 6, 4 / 7, 4 / 8, 4 / 9, 4 / 10])
    assert curve[2]["min_confidence"] == pytest.approx(0.7)


def test_at_threshold_is_what_the_runtime_shows():
    confidence = np.array([0.9, 0.85, 0.84, 0.3])
    correct = np.array([True, False, True, True])
    point = em.at_threshold(confidence, correct, 0.85)  # the runtime: uncertain when top < min_confidence
    assert point == {"threshold": 0.85, "n": 4, "shown": 2, "coverage": 0.5, "accuracy_shown": 0.5}
    assert em.at_threshold(confidence, correct, 0.95)["accuracy_shown"] is None


def test_per_corpus_metrics():
    out = em.per_corpus(["a", "a", "b", "b", "b"], np.array([0, 1, 2, 2, 3]), np.array([0, 0, 2, 1, 3]))
    assert out["a"] == {"n": 2, "accuracy": 0.5, "macro_f1": pytest.approx((2 / 3 + 0) / 2)}
    assert out["b"] == {"n": 3, "accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx((2 / 3 + 1) / 2)}


def test_restricted_argmax_and_the_report_of_a_four_class_manifest():
    probs = np.array([[0.1, 0.5, 0.25, 0.15, 0, 0], [0.05, 0.6, 0.05, 0.3, 0, 0], [0.7, 0.1, 0.1, 0.1, 0, 0]])
    assert em.restricted_argmax(probs, [3, 0, 2]).tolist() == [2, 3, 0]
    summary = em.labelled_summary(np.array([2, 3, 0]), probs, ["ko"] * 3, 0.5)
    assert summary["accuracy"] == pytest.approx(1 / 3)  # 6-way: two clips go to 'happy', absent here
    assert summary["restricted"]["classes"] == ["neutral", "sad", "angry"]
    assert summary["restricted"]["accuracy"] == 1.0
    assert "restricted" not in em.labelled_summary(np.arange(6), np.eye(6), ["x"] * 6, 0.5)


def test_narration_counts_neutral_or_uncertain():
    probs = np.array([[0.9, 0.1, 0, 0, 0, 0], [0.1, 0.9, 0, 0, 0, 0], [0.2, 0.4, 0.4, 0, 0, 0], [0.6, 0.4, 0, 0, 0, 0]])
    out = em.narration_summary(probs, 0.85)
    assert out["n"] == 4
    assert out["neutral_or_uncertain"] == 0.75  # only the confident 'happy' is shown as an emotion
    assert out["uncertain"] == 0.5 and out["neutral"] == 0.5
    assert out["shown_as"]["happy"] == 1 and out["shown_as"]["neutral"] == 1


def test_intensity_accuracy_counts_only_clips_with_both():
    out = em.intensity_accuracy(["normal", "strong", "strong", "", "normal"], np.array([0.2, 0.7, 0.4, 0.9, np.nan]))
    assert out == {"n": 3, "accuracy": pytest.approx(2 / 3), "strong_at": 0.5}
    assert em.intensity_accuracy(["", ""], np.array([0.5, 0.5])) is None


def test_session_order_groups_speakers_and_is_fixed_by_the_seed():
    speakers = ["b", "a", "b", "c", "a", "b", "a", "c", "b", "a"]
    order = em.session_order(speakers, seed=0)
    assert sorted(order) == list(range(len(speakers)))
    runs = [speakers[i] for i in order]
    assert runs == sorted(runs)  # each speaker's clips together, one conversation each
    assert em.session_order(speakers, seed=0) == order
    assert any(em.session_order(speakers, seed=s) != order for s in range(1, 6))
    place = em.positions(order, speakers)
    for speaker in set(speakers):
        assert sorted(place[i] for i in order if speakers[i] == speaker) == list(range(speakers.count(speaker)))


class RecordingRecognizer:
    """Gives each clip's id back as P(neutral); records what each source had seen before it."""

    def __init__(self) -> None:
        self.seen: dict[str, list[int]] = {}
        self.calls: list[tuple[str, int, tuple[int, ...]]] = []
        self.encoded = 0

    def reset_sessions(self) -> None:
        self.seen.clear()

    def encoder_states(self, audio):
        self.encoded += 1
        return {"states": audio}

    def classify(self, audio, *, encoder_states, source, final):
        assert encoder_states is not None
        clip = int(round(audio[0] * 100)) - 1
        before = self.seen.setdefault(source, [])
        self.calls.append((source, clip, tuple(before)))
        if final:
            before.append(clip)
        p = np.full(6, 0.1)
        p[0] = 0.5
        return EmotionResult(label="neutral", scores=dict(zip(EMOTIONS, p)), intensity=len(before) / 10)


def test_a_session_run_is_causal_and_alone_sees_nothing_before():
    speakers = ["a", "b", "a", "a", "b"]
    waves = [np.full(8000, (i + 1) / 100, dtype=np.float32) for i in range(len(speakers))]
    order = em.session_order(speakers, seed=3)
    fake = RecordingRecognizer()
    scores = judge(fake, waves, speakers, order, 0.0)
    assert fake.encoded == len(waves)  # one encoder pass serves both modes
    session = [(clip, before) for source, clip, before in fake.calls if source.startswith("speaker:")]
    assert [clip for clip, _ in session] == order
    for k, (clip, before) in enumerate(session):
        earlier = [i for i in order[:k] if speakers[i] == speakers[clip]]
        assert list(before) == earlier  # judged with that speaker's earlier clips only
    assert all(before == () for source, _, before in fake.calls if source.startswith("clip:"))
    place = em.positions(order, speakers)
    assert scores["session"].intensity.tolist() == pytest.approx([(p + 1) / 10 for p in place])
    assert scores["alone"].intensity.tolist() == pytest.approx([0.1] * len(waves))
    judge(fake, waves, speakers, order, 0.0)
    assert fake.calls[len(waves) * 2][2] == ()  # every call starts new sessions


def test_manifest_rows_without_emotion_are_unlabelled_and_surprise_is_dropped(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,dataset,speaker,emotion,intensity\na.wav,x,s1,calm,strong\nb.wav,lj,LJ,,\nc.wav,x,s1,surprise,\n")
    clips = load_eval_manifest(path)
    assert [(c.path.name, c.truth, c.target, c.truth_intensity) for c in clips] == [
        ("a.wav", "neutral", 0, "strong"), ("b.wav", "", -1, "")]


# -- the real CLI on the shipped head -----------------------------------------------------------

HEAD = "emotion-whisper-base"


@pytest.fixture(scope="module")
def head_models(default_models) -> Path:
    """The project's models folder with whisper-base-int8 and the committed head."""
    return default_models


def _manifest(path: Path) -> Path:
    """12 clips of two held-out actors (each class twice) and 2 unlabelled LJSpeech narration clips."""
    rows = list(csv.DictReader((EMOTION_DATA / "manifest.csv").open(newline="", encoding="utf-8")))
    picked, taken = [], set()
    for row in rows:
        key = (row["speaker"], row["emotion"])
        if row["speaker"] in ("ravdess:09", "ravdess:18") and row["emotion"] in EMOTIONS and key not in taken:
            taken.add(key)
            picked.append([str(EMOTION_DATA / row["path"]), "ravdess", row["speaker"], row["emotion"], row["intensity"]])
    picked += [[str(ASR_DEV / "en" / "ljspeech" / f"LJ001-000{i}.flac"), "ljspeech", "LJ", "", ""] for i in (1, 2)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["path", "dataset", "speaker", "emotion", "intensity"], *picked])
    return path


def _eval(tmp_path: Path, models: Path, manifest: Path, name: str, *extra: str) -> tuple[dict, list[dict]]:
    from subtone.service.cli.main import main

    config = tmp_path / "config.toml"
    config.write_text(f'[models]\ndir = "{models}"\n\n[runtime]\nproviders = ["cpu"]\n')
    out = tmp_path / name
    assert main(["--config", str(config), "eval", "emotion", str(manifest), "--model", HEAD, "--out", str(out), *extra]) == 0
    for plot in ("confusion.png", "coverage.png", "gain_sweep.png"):
        assert (out / plot).stat().st_size > 0, plot
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return json.loads((out / "metrics.json").read_text(encoding="utf-8")), rows


def test_eval_cli_scores_the_head_in_session_and_alone(head_models, shared_data, tmp_path):
    pytest.importorskip("matplotlib", reason="`subtone eval emotion` plots with the train extra's matplotlib")
    manifest = _manifest(tmp_path / "manifest.csv")
    report, rows = _eval(tmp_path, head_models, manifest, "session", "--session", "--seed", "1")

    assert len(rows) == 14 and list(rows[0]) == [*PREDICTION_COLUMNS, "predicted_alone", "probability_alone"]
    assert sorted(r["truth"] for r in rows) == ["", ""] + sorted(list(EMOTIONS) * 2)
    assert all(r["predicted"] in EMOTIONS and r["shown"] in ("0", "1") and 0 <= float(r["intensity"]) <= 1 for r in rows)
    assert sorted(int(r["position"]) for r in rows if r["speaker"] == "ravdess:09") == list(range(6))
    assert report["mode"] == "session" and set(report["modes"]) == {"session", "alone"} and report["seed"] == 1
    for key in ("accuracy", "macro_f1", "per_class_f1", "confusion", "by_dataset", "coverage_curve", "at_threshold",
                "narration", "gain_sweep"):
        assert key in report, key
    assert report["n"] == 12 and set(report["by_dataset"]) == {"ravdess"} and len(report["coverage_curve"]) == 10
    assert report["narration"]["n"] == 2 and report["at_threshold"]["threshold"] == load_settings().emotion.min_confidence
    assert report["intensity"]["n"] == 12  # RAVDESS says normal or strong for every labelled clip here
    assert set(report["gain_sweep"]["histogram"]) == {"-20", "-10", "+0", "+10"}
    assert all(sum(h) == 14 for h in report["gain_sweep"]["histogram"].values())

    # Adaptation really happened: the first clip of a conversation is judged by the prior alone, later ones not.
    firsts = [r for r in rows if r["position"] == "0"]
    assert firsts and all(r["probability"] == r["probability_alone"] for r in firsts)
    assert any(r["probability"] != r["probability_alone"] for r in rows)

    alone, alone_rows = _eval(tmp_path, head_models, manifest, "alone", "--seed", "1")
    assert alone["mode"] == "alone" and all(r["position"] == "" for r in alone_rows)
    assert [r["probability"] for r in alone_rows] == [r["probability_alone"] for r in rows]
    assert alone["modes"] == report["modes"]  # the same two runs, the other headline

    # "Alone" is the runtime's classify on a fresh recognizer, its own encoder included.
    from subtone.service.audio.file import load_audio
    from subtone.service.emotion.recognizer import emotion_model
    from subtone.service.models.registry import load_model

    settings = load_settings(overrides={"models.dir": str(head_models), "runtime.providers": ["cpu"]})
    recognizer = emotion_model(load_model(head_models, HEAD), settings)
    result = recognizer.classify(load_audio(rows[3]["path"]), source="fresh")
    assert f"{result.probability:.4f}" == rows[3]["probability_alone"] and result.label == rows[3]["predicted_alone"]
