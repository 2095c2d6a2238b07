"""NeMo checkpoints through `subtone export nemo` and our ONNX decoders, against NeMo's own transcribe().

Needs nemo_toolkit[asr] (CI installs it in .venv-nemo with the torch pin); skipped where it is absent.
The models are tiny random-weight FastConformers built from NeMo's config schema, with the output
layer aimed at the first clip's frame-to-frame variation, so decoded sequences hold many distinct
tokens and a wrong decoder cannot pass (see tests/nemo_builders.py).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("nemo.collections.asr", reason="nemo_toolkit[asr] is not installed (CI runs this in .venv-nemo)")

import nemo_builders  # noqa: E402
from conftest import ASR_DEV  # noqa: E402
from subtone.config import load_settings  # noqa: E402
from subtone.export.commands import main as factory_main  # noqa: E402
from subtone.service.errors import SubtoneError  # noqa: E402
from subtone.service.models.registry import load_model, read_manifest  # noqa: E402
from subtone.service.asr.recognizer import create_recognizer  # noqa: E402

pytestmark = pytest.mark.slow

CLIPS = [
    ASR_DEV / "en" / "ljspeech" / "LJ001-0001.flac",
    ASR_DEV / "en" / "ljspeech" / "LJ001-0002.flac",
    ASR_DEV / "en" / "whisper_jfk" / "jfk.flac",
]
KINDS = {
    # test id: (builder kind, family, language flag)
    "ctc-bpe": ("ctc", "nemo-ctc", "en"),
    "rnnt-bpe": ("rnnt", "nemo-rnnt", "en"),
    "tdt-bpe": ("tdt", "nemo-tdt", "en"),
    "rnnt-korean-chars": ("rnnt_char", "nemo-rnnt", None),
}


@dataclass
class Built:
    model: Any
    """The NeMo model object that was saved as the .nemo file."""
    checkpoint: Path
    name: str


def read_clip(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000
    return audio


@pytest.fixture(scope="session")
def nemo_workdir(tmp_path_factory, shared_data) -> Path:
    return tmp_path_factory.mktemp("nemo")


@pytest.fixture(scope="session")
def nemo_models_dir(nemo_workdir) -> Path:
    return nemo_workdir / "models_onnx"


@pytest.fixture(scope="session")
def nemo_built(nemo_workdir, nemo_models_dir) -> dict[str, Built]:
    """Each model built, saved as .nemo and exported through the CLI once per session."""
    rows = [json.loads(line) for line in (ASR_DEV / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    tokenizer_dir = nemo_builders.train_sentencepiece([r["text"] for r in rows], nemo_workdir / "tokenizer")
    calibration = read_clip(CLIPS[0])
    built: dict[str, Built] = {}
    for test_id, (kind, _family, language) in KINDS.items():
        if kind == "ctc":
            cfg = nemo_builders.ctc_config(tokenizer_dir=tokenizer_dir)
        elif kind == "rnnt_char":
            # like the Korean Conformer-Transducer: striding ×4 subsampling, frames padded to 16
            cfg = nemo_builders.transducer_config(labels=nemo_builders.KOREAN_LABELS, conformer=True)
        else:
            cfg = nemo_builders.transducer_config(tokenizer_dir=tokenizer_dir, tdt=kind == "tdt")
        model = nemo_builders.build_model(kind, cfg, calibration_audio=calibration)
        checkpoint = nemo_workdir / f"{test_id}.nemo"
        model.save_to(str(checkpoint))
        argv = ["export", "nemo", "--checkpoint", str(checkpoint), "--name", test_id, "--out", str(nemo_models_dir)]
        if language:
            argv += ["--language", language]
        assert factory_main(argv) == 0
        built[test_id] = Built(model, checkpoint, test_id)
    return built


def unk_spacing_free(text: str) -> str:
    return re.sub(r"\s*\u2047\s*", "\u2047", text)


def settings_for(models_dir: Path):
    return load_settings(None, {"models.dir": str(models_dir), "runtime.providers": ["cpu"]})


def nemo_token_ids(model, clips: list[Path]) -> tuple[list[list[int]], list[str]]:
    """NeMo's own greedy transcribe(): token IDs and text per clip."""
    import torch

    hyps = model.transcribe([str(c) for c in clips], batch_size=1, return_hypotheses=True, verbose=False)
    if not hasattr(model, "joint"):
        # CTC hypotheses carry log-probs; NeMo's own greedy decoding and repeat-merging give the IDs.
        ids = []
        for h in hyps:
            logprobs = h.y_sequence[None]
            (frame_hyps,) = model.decoding.decoding(
                decoder_output=logprobs, decoder_lengths=torch.tensor([logprobs.shape[1]])
            )
            saved = model.decoding.compute_timestamps
            model.decoding.compute_timestamps = True
            try:
                merged = model.decoding.decode_hypothesis(frame_hyps, fold_consecutive=True)[0].text[0]
            finally:
                model.decoding.compute_timestamps = saved
            ids.append([int(i) for i in merged])
        return ids, [h.text for h in hyps]
    return [h.y_sequence.tolist() for h in hyps], [h.text for h in hyps]


@pytest.mark.parametrize("test_id", list(KINDS))
def test_onnx_decoding_gives_nemo_token_ids(test_id, nemo_built, nemo_models_dir) -> None:
    built = nemo_built[test_id]
    settings = settings_for(nemo_models_dir)
    recognizer = create_recognizer(load_model(nemo_models_dir, built.name), settings)
    expected_ids, expected_text = nemo_token_ids(built.model, CLIPS)
    for clip, ids, text in zip(CLIPS, expected_ids, expected_text):
        ours = recognizer.transcribe(read_clip(clip))
        assert list(ours.tokens) == ids, f"{test_id} on {clip.name}"
        # NeMo's CTC path spaces SentencePiece's unknown-piece mark (⁇) differently; random weights emit it
        assert unk_spacing_free(ours.text) == unk_spacing_free(text.strip())
    longest = max(expected_ids, key=len)
    assert len(set(longest)) >= 5, f"{test_id}: the reference is too uniform to test anything: {longest[:20]}"


def test_manifest_entries_describe_each_family(nemo_built, nemo_models_dir) -> None:
    models = read_manifest(nemo_models_dir)["models"]
    for test_id, (_kind, family, _language) in KINDS.items():
        entry = models[test_id]
        assert entry["family"] == family
        assert entry["subsampling"]["factor"] == (4 if test_id == "rnnt-korean-chars" else 8)
        assert entry["features"] == 80
        assert (nemo_models_dir / entry["files"]["preprocessor"]).is_file()
        assert entry["export_command"].startswith("subtone export nemo --checkpoint ")
    assert models["tdt-bpe"]["durations"] == nemo_builders.DURATIONS
    assert models["ctc-bpe"]["blank_id"] == models["ctc-bpe"]["vocab_size"] == 64
    korean = models["rnnt-korean-chars"]
    assert korean["tokenizer"] == "chars" and korean["language"] == "ko" and korean["pad_to"] == 16
    labels = json.loads((nemo_models_dir / korean["files"]["tokenizer"]).read_text(encoding="utf-8"))
    assert labels == nemo_builders.KOREAN_LABELS and korean["blank_id"] == len(labels)


@pytest.mark.parametrize("test_id", ["ctc-bpe", "rnnt-korean-chars"])
def test_preprocessor_graph_matches_nemo_features(test_id, nemo_built, nemo_models_dir) -> None:
    import torch

    built = nemo_built[test_id]
    recognizer = create_recognizer(load_model(nemo_models_dir, built.name), settings_for(nemo_models_dir))
    audios = [read_clip(clip) for clip in CLIPS]
    audios.append(audios[0][: 159 * 160])  # 160 frames: a multiple of pad_to=16, so NeMo adds none
    for audio in audios:
        ours, n_frames = recognizer.features(audio)
        with torch.no_grad():
            ref, ref_len = built.model.preprocessor(
                input_signal=torch.from_numpy(audio)[None], length=torch.tensor([audio.size])
            )
        assert n_frames == int(ref_len[0])
        assert ours.shape == tuple(ref.shape)
        np.testing.assert_allclose(ours, ref.numpy(), atol=1e-3)


def test_short_and_empty_audio_give_text_or_nothing(nemo_built, nemo_models_dir) -> None:
    for name in ("ctc-bpe", "tdt-bpe"):
        recognizer = create_recognizer(load_model(nemo_models_dir, name), settings_for(nemo_models_dir))
        assert recognizer.transcribe(np.zeros(0, dtype=np.float32)).text == ""
        short = recognizer.transcribe(read_clip(CLIPS[1])[:400])
        assert isinstance(short.text, str)


def test_transcribe_command_selects_the_model(nemo_built, nemo_models_dir, tmp_path, capsys) -> None:
    from subtone.service.cli import transcribe

    config = tmp_path / "config.toml"
    config.write_text(
        f'[models]\ndir = "{nemo_models_dir}"\n[runtime]\nproviders = ["cpu"]\n[asr]\nmodel = "tdt-bpe"\n',
        encoding="utf-8",
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    transcribe.register(parser.add_subparsers())
    settings = settings_for(nemo_models_dir)
    for extra, name in (([], "tdt-bpe"), (["--model", "rnnt-korean-chars"], "rnnt-korean-chars")):
        args = parser.parse_args(["--config", str(config), "transcribe", *extra, "--json", str(CLIPS[1])])
        assert args.func(args) == 0
        row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        expected = create_recognizer(load_model(nemo_models_dir, name), settings).transcribe(read_clip(CLIPS[1]))
        assert row["model"] == name and row["text"] == expected.text and row["text"]


def _fake_checkpoint(path: Path, cfg: dict[str, Any]) -> Path:
    import yaml

    data = yaml.safe_dump(cfg).encode("utf-8")
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("model_config.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _export_error(argv: list[str], models_dir: Path, capsys) -> str:
    before = sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []
    assert factory_main(["export", "nemo", *argv, "--out", str(models_dir)]) == 1
    after = sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []
    assert after == before, "a failed export left files behind"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_checkpoints_are_one_line_errors(nemo_built, nemo_models_dir, tmp_path, capsys) -> None:
    not_tar = tmp_path / "model.nemo"
    not_tar.write_bytes(b"this is not a tar archive")
    assert "is not a .nemo checkpoint" in _export_error(["--checkpoint", str(not_tar)], nemo_models_dir, capsys)

    classifier = _fake_checkpoint(
        tmp_path / "classifier.nemo",
        {"target": "nemo.collections.asr.models.classification_models.EncDecClassificationModel"},
    )
    err = _export_error(["--checkpoint", str(classifier)], nemo_models_dir, capsys)
    assert "'EncDecClassificationModel' is not supported" in err and "EncDecRNNTBPEModel" in err

    mfcc = _fake_checkpoint(
        tmp_path / "mfcc.nemo",
        {
            "target": "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE",
            "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMFCCPreprocessor"},
        },
    )
    err = _export_error(["--checkpoint", str(mfcc)], nemo_models_dir, capsys)
    assert "preprocessor 'AudioToMFCCPreprocessor' is not supported" in err

    err = _export_error(["--pretrained", "nvidia/subtone-test-no-such-model"], nemo_models_dir, capsys)
    assert "could not download pretrained model 'nvidia/subtone-test-no-such-model'" in err
    assert "--checkpoint FILE.nemo" in err


def test_manifest_without_nemo_fields_is_a_clear_error(nemo_built, nemo_models_dir) -> None:
    entry = load_model(nemo_models_dir, "ctc-bpe")
    broken = type(entry)(
        name=entry.name,
        family=entry.family,
        task=entry.task,
        files=entry.files,
        sha256=entry.sha256,
        root=entry.root,
        export_command=entry.export_command,
        info={},
    )
    with pytest.raises(SubtoneError, match="lacks NeMo fields"):
        create_recognizer(broken, settings_for(nemo_models_dir))
