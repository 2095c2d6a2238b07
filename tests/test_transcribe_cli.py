"""`subtone transcribe` end to end: the JFK sentence, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from conftest import JFK, TEST_MODEL
from subtone.config import load_settings
from subtone.service.cli.main import main

pytestmark = pytest.mark.slow
JFK_WORDS = "ask not what your country can do for you"
JFK_SENTENCE = "And so my fellow Americans ask not what your country can do for you ask what you can do for your country"
SUBTONE = str(Path(sys.executable).with_name("subtone"))


def _config(tmp_path: Path, models_dir: Path, model: str = TEST_MODEL) -> Path:
    """Settings on `models_dir` with asr.model pinned (the tests' small English model unless given)."""
    path = tmp_path / "config.toml"
    asr = f'[asr]\nmodel = "{model}"\n'
    # Emotion off: these tests are about speech; the emotion model has its own tests.
    path.write_text(
        f'[models]\ndir = "{models_dir}"\n[runtime]\nproviders = ["cpu"]\n[emotion]\nenabled = false\n{asr}',
        encoding="utf-8",
    )
    return path


def _transcribe(capsys, config: Path, *files: Path | str, extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    code = main(["--config", str(config), "transcribe", *extra, *map(str, files)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def config(tmp_path, whisper_model_dir) -> Path:
    return _config(tmp_path, whisper_model_dir)


def test_jfk_sentence_through_the_installed_command(whisper_model_dir, tmp_path):
    """The real console script, as a user types it."""
    proc = subprocess.run(
        [SUBTONE, "--config", str(_config(tmp_path, whisper_model_dir)), "transcribe", str(JFK)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert JFK_WORDS in proc.stdout.lower()


def test_json_output(capsys, config):
    code, out, _ = _transcribe(capsys, config, JFK, extra=("--json",))
    row = json.loads(out)
    assert code == 0 and JFK_WORDS in row["text"].lower()
    assert row["duration_s"] == pytest.approx(11.0, abs=0.01) and row["model"] == load_settings(config).asr.model


def test_bad_files_give_one_line_each(capsys, config, tmp_path):
    text_wav = tmp_path / "notes.wav"
    text_wav.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    empty.touch()
    missing = tmp_path / "missing.wav"
    code, out, err = _transcribe(capsys, config, missing, text_wav, empty, JFK)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in err
    assert "missing.wav" in lines[0] and "not found" in lines[0]
    assert "notes.wav" in lines[1] and "not a readable audio file" in lines[1]
    assert "empty.wav" in lines[2] and "empty file" in lines[2]
    assert JFK_WORDS in out.lower()  # the good file still gets its text


def test_silent_file_gives_empty_text(capsys, config, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32_000, np.float32), 16_000)
    code, out, err = _transcribe(capsys, config, silent)
    assert code == 0 and out.strip() == "" and err == ""


@pytest.mark.parametrize("rate,channels,max_errors", [(8_000, 1, 3), (48_000, 1, 0), (44_100, 2, 0)])
def test_other_rates_and_stereo_give_the_same_words(capsys, config, tmp_path, rate, channels, max_errors):
    """Resampled and down-mixed correctly. 8 kHz audio has nothing above 4 kHz, which tiny.en
    hears as 'American(s)'/'asked' for 'Americans'/'ask' (faster-whisper too, 1 error; ours 1-3
    depending on trim/int8): up to 3 of 22 word errors allowed there only (a wrong rate gives nonsense)."""
    from subtone.export.evaluation.wer import word_errors

    audio, src_rate = sf.read(JFK, dtype="float32")
    audio = soxr.resample(audio, src_rate, rate)
    if channels == 2:  # the voice on one side only, half as loud on the other: a real down-mix
        audio = np.stack([audio, 0.5 * audio], axis=1)
    path = tmp_path / f"jfk_{rate}_{channels}.wav"
    sf.write(path, audio, rate, subtype="PCM_16")
    code, out, _ = _transcribe(capsys, config, path)
    assert code == 0
    counts = word_errors(JFK_SENTENCE, out)
    assert counts.substitutions + counts.deletions + counts.insertions <= max_errors, out


def _copy_models(whisper_model_dir: Path, dst: Path) -> Path:
    """The fp32 entry's files and the manifest, copied (a test must not damage the shared models)."""
    (dst / "whisper-tiny.en").mkdir(parents=True)
    manifest = json.loads((whisper_model_dir / "manifest.json").read_text())
    entry = manifest["models"]["whisper-tiny.en"]
    for rel in entry["files"].values():
        shutil.copyfile(whisper_model_dir / rel, dst / rel)
    (dst / "manifest.json").write_text(json.dumps({"models": {"whisper-tiny.en": entry}}))
    return dst


def test_changed_model_file_names_it_and_the_fix(whisper_model_dir, tmp_path):
    models = _copy_models(whisper_model_dir, tmp_path / "models")
    decoder = models / "whisper-tiny.en" / "decoder.onnx"
    with decoder.open("r+b") as fh:
        fh.seek(5_000_000)
        byte = fh.read(1)
        fh.seek(5_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    proc = subprocess.run(
        [SUBTONE, "--config", str(_config(tmp_path, models, "whisper-tiny.en")), "transcribe", str(JFK)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(decoder) in lines[0] and "sha256" in lines[0] and "subtone export whisper" in lines[0]


def test_corrupt_onnx_with_matching_sha_is_a_clear_error(capsys, whisper_model_dir, tmp_path):
    from subtone.export.manifest_writer import write_entry

    models = _copy_models(whisper_model_dir, tmp_path / "models")
    encoder = models / "whisper-tiny.en" / "encoder.onnx"
    encoder.write_bytes(encoder.read_bytes()[:100_000])  # truncated, then "blessed" by a new manifest
    entry = json.loads((models / "manifest.json").read_text())["models"]["whisper-tiny.en"]
    write_entry(models, "whisper-tiny.en", entry)
    code, out, err = _transcribe(capsys, _config(tmp_path, models, "whisper-tiny.en"), JFK)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(encoder) in lines[0] and "re-export" in lines[0]
