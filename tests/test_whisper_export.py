"""The CTranslate2 reader, the torch mapping, and numerical parity of every exported ONNX graph."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import JFK
from subtone.export.ctranslate2_reader import read_model_bin
from subtone.export.whisper_export import cache_names, wheel_model_dir
from subtone.export.whisper_torch import load_from_ct2
from subtone.service.audio.file import load_audio
from subtone.service.errors import SubtoneError
from subtone.service.models.registry import load_model
from subtone.service.asr.whisper.frontend import log_mel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ct2():
    return read_model_bin(wheel_model_dir() / "model.bin")


@pytest.fixture(scope="module")
def torch_model(ct2):
    return load_from_ct2(ct2.variables)


@pytest.fixture(scope="module")
def jfk_mel() -> np.ndarray:
    return log_mel(load_audio(JFK))


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest absolute error relative to the reference's largest magnitude."""
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def test_reader_sees_whisper_tiny_en_layout(ct2):
    v = ct2.variables
    assert ct2.spec == "WhisperSpec" and ct2.binary_version >= 4
    assert v["decoder/embeddings/weight"].shape == (51864, 384)
    assert v["decoder/embeddings/weight"].dtype == np.float16
    # The output projection is an alias: the very same array as the embedding.
    assert ct2.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert v["decoder/projection/weight"] is v["decoder/embeddings/weight"]
    # Fused QKV and cross KV; Whisper's key projections have no bias, stored as zeros.
    assert v["encoder/layer_0/self_attention/linear_0/weight"].shape == (3 * 384, 384)
    assert not v["encoder/layer_0/self_attention/linear_0/bias"][384:768].any()
    assert v["decoder/layer_0/attention/linear_1/weight"].shape == (2 * 384, 384)
    assert not v["decoder/layer_0/attention/linear_1/bias"][:384].any()
    assert int(v["encoder/num_heads"]) == 6


def test_reader_rejects_truncated_and_foreign_files(tmp_path):
    src = (wheel_model_dir() / "model.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(src[:5000])
    with pytest.raises(SubtoneError, match="cut.bin"):
        read_model_bin(cut)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(struct.pack("<I", 99) + src[4:100])
    with pytest.raises(SubtoneError, match="version 99"):
        read_model_bin(odd)


def test_torch_model_transcribes_jfk(torch_model, jfk_mel):
    """The weight mapping itself is right: greedy torch decoding gives the JFK sentence."""
    from subtone.service.asr.whisper.tokenizer import SpecialTokens, WhisperTokenizer
    from subtone.export.whisper_export import SPECIAL_TOKENS

    with torch.no_grad():
        caches = torch_model.cross_key_values(torch_model.encode(torch.from_numpy(jfk_mel[None, :, :3000])))
        empty = [torch.zeros(1, 6, 0, 64) for _ in range(8)]
        tokens, out = torch.tensor([[50257, 50362]]), []
        for _ in range(40):
            logits, *self_cache = torch_model.decode(tokens, *empty, *caches)
            empty = self_cache
            token = int(logits[0, -1].argmax())
            if token == 50256:
                break
            out.append(token)
            tokens = torch.tensor([[token]])
    tok = WhisperTokenizer(wheel_model_dir() / "tokenizer.json", SpecialTokens.from_mapping(SPECIAL_TOKENS))
    assert "ask not what your country can do for you" in tok.decode(out).lower()


@pytest.mark.parametrize("frames", [3000, 1200])
def test_encoder_parity(whisper_model_dir, torch_model, jfk_mel, frames):
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    mel = np.ascontiguousarray(jfk_mel[None, :, :frames])
    names = cache_names(4)["cross"]
    ours = _session(entry.path("encoder")).run(names, {"mel": mel})
    with torch.no_grad():
        ref = torch_model.cross_key_values(torch_model.encode(torch.from_numpy(mel)))
    for name, a, b in zip(names, ours, ref):
        assert a.shape == (1, 6, frames // 2, 64), name
        assert _rel_err(a, b.numpy()) < 1e-4, name


def _decoder_feeds(gen: np.random.Generator, past: int, tokens: list[int]) -> dict[str, np.ndarray]:
    names = cache_names(4)
    feeds = {"tokens": np.array([tokens], dtype=np.int64)}
    for name in names["self"]:
        feeds[name] = gen.standard_normal((1, 6, past, 64), dtype=np.float32)
    for name in names["cross"]:
        feeds[name] = gen.standard_normal((1, 6, 150, 64), dtype=np.float32)
    return feeds


@pytest.mark.parametrize("past,tokens", [(0, [50257, 50362]), (0, [50257, 50362, 843, 523]), (7, [616]), (3, [5891, 3399])])
def test_decoder_step_parity(whisper_model_dir, torch_model, past, tokens):
    """Without a cache (the prompt) and with one (later steps): logits and grown caches match torch."""
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    feeds = _decoder_feeds(np.random.default_rng(past + len(tokens)), past, tokens)
    ours = _session(entry.path("decoder")).run(None, feeds)
    with torch.no_grad():
        inputs = [torch.from_numpy(feeds[n]) for n in [*cache_names(4)["self"], *cache_names(4)["cross"]]]
        ref = torch_model.decode(torch.from_numpy(feeds["tokens"]), *inputs)
    assert ours[0].shape == (1, len(tokens), 51864)
    assert _rel_err(ours[0], ref[0].numpy()) < 1e-4
    assert (ours[0].argmax(-1) == ref[0].numpy().argmax(-1)).all()
    for a, b in zip(ours[1:], ref[1:]):
        assert a.shape == (1, 6, past + len(tokens), 64)
        assert _rel_err(a, b.numpy()) < 1e-4
        # The old cache is carried over unchanged.
        np.testing.assert_array_equal(a[:, :, :past], b.numpy()[:, :, :past])


def test_step_by_step_equals_whole_sequence(whisper_model_dir):
    """The cache path is the same maths as feeding the whole sequence at once (catches mask/offset bugs)."""
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    session = _session(entry.path("decoder"))
    gen = np.random.default_rng(3)
    seq = [50257, 50362, 843, 523, 616]
    whole = _decoder_feeds(gen, 0, seq)
    full_logits = session.run(["logits"], whole)[0]
    feeds = dict(whole, tokens=np.array([seq[:2]], dtype=np.int64))
    logits, *cache = session.run(None, feeds)
    steps = [logits[0, -1]]
    for token in seq[2:]:
        feeds.update(zip(cache_names(4)["self"], cache), tokens=np.array([[token]], dtype=np.int64))
        logits, *cache = session.run(None, feeds)
        steps.append(logits[0, -1])
    assert _rel_err(np.stack(steps), full_logits[0, 1:]) < 1e-4


def test_int8_graphs_track_fp32(whisper_model_dir, jfk_mel):
    """Quantized graphs are close (not equal) to float: same top token on real audio."""
    fp32 = load_model(whisper_model_dir, "whisper-tiny.en")
    int8 = load_model(whisper_model_dir, "whisper-tiny.en-int8")
    mel = np.ascontiguousarray(jfk_mel[None, :, :3000])
    names = cache_names(4)
    outs = []
    for entry in (fp32, int8):
        cross = _session(entry.path("encoder")).run(names["cross"], {"mel": mel})
        feeds = {"tokens": np.array([[50257, 50362, 843, 523, 616]], dtype=np.int64)}
        feeds.update({n: np.zeros((1, 6, 0, 64), np.float32) for n in names["self"]})
        feeds.update(zip(names["cross"], cross))
        outs.append((cross, _session(entry.path("decoder")).run(["logits"], feeds)[0]))
    (c32, l32), (c8, l8) = outs
    # Relative L2 error ~0.05-0.11 measured; an unrelated tensor would be ~1.4.
    assert all(np.linalg.norm(a - b) / np.linalg.norm(b) < 0.2 for a, b in zip(c8, c32))
    assert (l8[0, 1:].argmax(-1) == l32[0, 1:].argmax(-1)).all()


def test_tied_embedding_is_stored_once(whisper_model_dir):
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    graph = onnx.load(str(entry.path("decoder")), load_external_data=False).graph
    big = [tuple(t.dims) for t in graph.initializer if np.prod(t.dims) >= 51864 * 384]
    assert big == [(51864, 384)]
    assert entry.path("decoder").stat().st_size < 120 * 2**20


def test_manifest_entry_describes_the_model(whisper_model_dir):
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    assert (entry.family, entry.task, entry.export_command) == ("whisper", "asr", "subtone export whisper")
    info = entry.info
    assert info["front_end"]["n_fft"] == 400 and info["front_end"]["hop_length"] == 160
    assert info["front_end"]["n_mels"] == 80
    assert info["special_tokens"]["eot"] == 50256 and info["special_tokens"]["no_speech"] == 50361
    assert info["prompt"] == [50257, 50362]
    assert "OpenAI" in entry.path("license").read_text() and info["license"]["name"] == "MIT"
    session_inputs = {i.name for i in _session(entry.path("decoder")).get_inputs()}
    assert session_inputs == set(info["inputs"]["decoder"])
