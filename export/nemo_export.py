"""Turns a NeMo ASR checkpoint (.nemo) into ONNX graphs plus a manifest entry the runtime can decode.

Graphs written into models_onnx/<name>/:
- preprocessor.onnx: waveform [1, N] float32, length [1] int64 → features [1, F, T], features_length [1]
  (NeMo's own featurizer, exported with the dynamo exporter because its STFT is complex-valued)
- CTC: model.onnx: audio_signal [1, F, T], length → logprobs [1, T', V+1] (log-softmaxed, blank last)
- RNN-T / TDT: encoder.onnx (→ outputs [1, D, T'], encoded_lengths) and decoder_joint.onnx (one
  prediction-network step plus the joint: raw logits [1, 1, 1, V+1(+durations)] and LSTM states)
The tokenizer goes beside them: SentencePiece's .model, or the character labels as JSON.
NeMo and torch are imported only inside the functions here (torch comes with the train extra, NeMo on its own).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from subtone.export.manifest_writer import write_entry
from subtone.service.errors import SubtoneError

log = logging.getLogger(__name__)

NEMO_INSTALL_HINT = "pip install -c constraints.txt 'nemo_toolkit[asr]'"
PREPROCESSOR_OPSET = 18
PREPROCESSOR_TOLERANCE = 1e-3

# NeMo model class → how its head is decoded; hybrids are decoded through their transducer head.
SUPPORTED_CLASSES: dict[str, str] = {
    "EncDecCTCModel": "ctc",
    "EncDecCTCModelBPE": "ctc",
    "EncDecRNNTModel": "transducer",
    "EncDecRNNTBPEModel": "transducer",
    "EncDecHybridRNNTCTCModel": "transducer",
    "EncDecHybridRNNTCTCBPEModel": "transducer",
}
MEL_PREPROCESSOR = "AudioToMelSpectrogramPreprocessor"


@dataclass(frozen=True)
class NemoExportResult:
    name: str
    family: str
    out_dir: Path
    seconds: float


def read_checkpoint_config(checkpoint: Path) -> dict[str, Any]:
    """model_config.yaml from a .nemo tar, as a dict; a SubtoneError if the file is not one."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise SubtoneError(f"checkpoint not found: {checkpoint} (expected a .nemo file)")
    if not tarfile.is_tarfile(checkpoint):
        raise SubtoneError(f"{checkpoint} is not a .nemo checkpoint (expected a tar archive holding model_config.yaml)")
    try:
        with tarfile.open(checkpoint) as tar:
            member = next((m for m in tar.getmembers() if Path(m.name).name == "model_config.yaml"), None)
            if member is None:
                raise SubtoneError(f"{checkpoint} has no model_config.yaml; expected a NeMo .nemo checkpoint")
            text = tar.extractfile(member).read().decode("utf-8")
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise SubtoneError(f"{checkpoint} could not be read as a .nemo checkpoint ({exc})") from None
    try:
        import yaml  # a NeMo dependency, present wherever the export can run
    except ImportError:
        raise SubtoneError(f"NeMo is not installed; install it with `{NEMO_INSTALL_HINT}`") from None

    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SubtoneError(f"{checkpoint}: model_config.yaml is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise SubtoneError(f"{checkpoint}: model_config.yaml is not a mapping; expected a NeMo model config")
    return cfg


def check_supported(cfg: Mapping[str, Any], source: str) -> str:
    """The head kind ("ctc" or "transducer"); a SubtoneError naming what we cannot export."""
    target = str(cfg.get("target", "") or cfg.get("_target_", ""))
    class_name = target.rsplit(".", 1)[-1]
    if class_name not in SUPPORTED_CLASSES:
        raise SubtoneError(
            f"{source}: model class '{class_name or 'unknown'}' is not supported "
            f"(supported: {', '.join(sorted(SUPPORTED_CLASSES))})"
        )
    check_preprocessor(cfg.get("preprocessor") or {}, source)
    return SUPPORTED_CLASSES[class_name]


def check_preprocessor(pre: Mapping[str, Any], source: str) -> None:
    """Reject front ends the runtime does not implement, before spending minutes on an export."""
    target = str(pre.get("_target_", "")).rsplit(".", 1)[-1]
    if target != MEL_PREPROCESSOR:
        raise SubtoneError(
            f"{source}: preprocessor '{target or 'missing'}' is not supported (expected {MEL_PREPROCESSOR}, "
            "the log-mel front end of NeMo's CTC and transducer models)"
        )
    rate = int(pre.get("sample_rate", 16000))
    if rate != 16000:
        raise SubtoneError(f"{source}: preprocessor sample_rate is {rate} Hz; subtone feeds 16000 Hz audio")
    if int(pre.get("frame_splicing", 1) or 1) != 1:
        raise SubtoneError(f"{source}: preprocessor frame_splicing={pre['frame_splicing']} is not supported (expected 1)")
    pad_to = pre.get("pad_to", 16)
    if not isinstance(pad_to, int) or pad_to < 0:
        raise SubtoneError(f"{source}: preprocessor pad_to={pad_to!r} is not supported (expected a whole number of frames)")
    normalize = pre.get("normalize", "per_feature")
    if normalize not in ("per_feature", "all_features", "NA", None, ""):
        raise SubtoneError(
            f"{source}: preprocessor normalize={normalize!r} is not supported "
            "(expected 'per_feature', 'all_features' or 'NA')"
        )


def default_name(checkpoint: Path | None, pretrained: str | None) -> str:
    stem = Path(checkpoint).stem if checkpoint else str(pretrained).rsplit("/", 1)[-1]
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.")
    return name or "nemo-model"


def export_nemo(
    models_dir: Path,
    *,
    checkpoint: Path | None = None,
    pretrained: str | None = None,
    name: str | None = None,
    language: str | None = None,
    export_command: str = "",
) -> NemoExportResult:
    """Export one checkpoint into models_dir/<name>/ and register it; nothing is left behind on failure."""
    t0 = time.perf_counter()
    if (checkpoint is None) == (pretrained is None):
        raise SubtoneError("give exactly one of --checkpoint FILE.nemo or --pretrained NAME")
    name = name or default_name(checkpoint, pretrained)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SubtoneError(f"model name '{name}' may hold only letters, digits, '.', '_' and '-'")
    if checkpoint is not None:
        source = str(checkpoint)
        check_supported(read_checkpoint_config(Path(checkpoint)), source)
    else:
        source = f"pretrained model '{pretrained}'"

    model = _load_model(checkpoint, pretrained)
    head = _head_of(model, source)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=models_dir))
    staging.chmod(0o755)
    try:
        info = _export_graphs(model, head, staging, source)
        tokenizer_info = _write_tokenizer(model, staging, source)
        final_dir = models_dir / name
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = {role: f"{name}/{rel}" for role, rel in {**info.pop("files"), **tokenizer_info.pop("files")}.items()}
    entry = {
        "family": info.pop("family"),
        "task": "asr",
        "files": files,
        "export_command": export_command,
        "language": language or _language_of(model),
        "source": str(pretrained or Path(checkpoint).name),
        "nemo_class": type(model).__name__,
        **info,
        **tokenizer_info,
    }
    write_entry(models_dir, name, entry)
    return NemoExportResult(name, entry["family"], models_dir / name, time.perf_counter() - t0)


def _quiet_nemo() -> None:
    os.environ.setdefault("NEMO_TESTING", "0")
    warnings.filterwarnings("ignore")
    for noisy in ("nemo_logger", "nemo", "nv_one_logger", "torch.onnx", "onnxscript", "lightning", "pytorch_lightning"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _load_model(checkpoint: Path | None, pretrained: str | None):
    _quiet_nemo()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from nemo.collections.asr.models import ASRModel
            from nemo.utils import logging as nemo_logging
    except ImportError as exc:
        raise SubtoneError(f"NeMo is not installed ({exc}); install it with `{NEMO_INSTALL_HINT}`") from None
    nemo_logging.setLevel(logging.ERROR)
    if checkpoint is not None:
        try:
            model = ASRModel.restore_from(str(checkpoint), map_location="cpu")
        except SubtoneError:
            raise
        except Exception as exc:  # NeMo raises many kinds for a broken or foreign checkpoint
            raise SubtoneError(f"NeMo could not load {checkpoint}: {_first_line(exc)}") from None
    else:
        try:
            model = ASRModel.from_pretrained(str(pretrained), map_location="cpu")
        except Exception as exc:  # network, hub and name errors all end here
            raise SubtoneError(
                f"NeMo could not download pretrained model '{pretrained}' ({_first_line(exc)}); "
                "this machine may not reach the model hub: download the .nemo file where it can and run "
                "`subtone export nemo --checkpoint FILE.nemo`"
            ) from None
    return model.eval()


def _head_of(model, source: str) -> str:
    for klass in type(model).__mro__:
        if klass.__name__ in SUPPORTED_CLASSES:
            check_preprocessor(dict(model.cfg.preprocessor), source)
            return SUPPORTED_CLASSES[klass.__name__]
    raise SubtoneError(
        f"{source}: model class '{type(model).__name__}' is not supported "
        f"(supported: {', '.join(sorted(SUPPORTED_CLASSES))})"
    )


def _export_graphs(model, head: str, out: Path, source: str) -> dict[str, Any]:
    info: dict[str, Any] = {"files": {"preprocessor": "preprocessor.onnx"}}
    features, pad_to, pad_value = _export_preprocessor(model, out / "preprocessor.onnx", source)
    info["features"] = features
    info["pad_to"] = pad_to
    info["pad_value"] = pad_value
    info["sample_rate"] = 16000
    info["subsampling"] = _subsampling_of(model)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if head == "ctc":
            model.export(str(out / "model.onnx"))
            info["files"]["model"] = "model.onnx"
            info["files"].update(_gather_weights(out / "model.onnx", "model_weights"))
            info["family"] = "nemo-ctc"
            info["blank_id"] = int(model.decoder.num_classes_with_blank - 1)
            return info
        if hasattr(model, "cur_decoder") and model.cur_decoder != "rnnt":
            model.change_decoding_strategy(decoder_type="rnnt")
        model.export(str(out / "model.onnx"))
    os.replace(out / "encoder-model.onnx", out / "encoder.onnx")
    os.replace(out / "decoder_joint-model.onnx", out / "decoder_joint.onnx")
    info["files"].update({"encoder": "encoder.onnx", "decoder_joint": "decoder_joint.onnx"})
    info["files"].update(_gather_weights(out / "encoder.onnx", "encoder_weights"))
    info["blank_id"] = int(model.decoder.blank_idx)
    info["max_symbols"] = int(_greedy_max_symbols(model.cfg))
    durations = _tdt_durations(model.cfg)
    if durations:
        info["family"] = "nemo-tdt"
        info["durations"] = durations
    else:
        info["family"] = "nemo-rnnt"
    return info


def _export_preprocessor(model, path: Path, source: str) -> tuple[int, int, float]:
    """NeMo's featurizer as an ONNX graph, checked against NeMo on a test signal."""
    import torch

    featurizer = model.preprocessor.featurizer

    class Preprocessor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.featurizer = featurizer

        def forward(self, waveform: torch.Tensor, length: torch.Tensor):
            return self.featurizer(waveform, length)

    wrapper = Preprocessor().eval()
    # Padding the frames to a multiple of pad_to depends on the length, which the exported graph
    # would freeze to one branch: the runtime pads instead (manifest "pad_to", "pad_value").
    pad_to = featurizer.pad_to
    featurizer.pad_to = 0
    try:
        _export_featurizer(wrapper, path, source)
    finally:
        featurizer.pad_to = pad_to
    return int(featurizer.nfilt), int(pad_to), float(featurizer.pad_value)


def _export_featurizer(wrapper, path: Path, source: str) -> None:
    import torch

    rng = np.random.default_rng(0)
    example = torch.from_numpy(rng.standard_normal((1, 32000)).astype(np.float32) * 0.1)
    samples = torch.export.Dim("samples", min=1600, max=16000 * 3600)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (example, torch.tensor([32000])),
                str(path),
                dynamo=True,
                opset_version=PREPROCESSOR_OPSET,
                input_names=["waveform", "length"],
                output_names=["features", "features_length"],
                dynamic_shapes={"waveform": {1: samples}, "length": None},
                verbose=False,
            )
    except Exception as exc:  # the dynamo exporter raises many kinds
        raise SubtoneError(
            f"{source}: its preprocessor could not be exported to ONNX ({_first_line(exc)}); "
            "its settings are not ones subtone implements"
        ) from None
    _inline_weights(path)
    _check_preprocessor_parity(wrapper, path, source)


def _inline_weights(path: Path) -> None:
    """One self-contained file (the dynamo exporter puts the filter banks in a side .data file)."""
    import onnx

    side_files = [p for p in path.parent.iterdir() if p.name.startswith(path.name) and p != path]
    if not side_files:
        return
    model = onnx.load(str(path), load_external_data=True)
    onnx.save(model, str(path), save_as_external_data=False)
    for side in side_files:
        side.unlink()


def _check_preprocessor_parity(wrapper, path: Path, source: str) -> None:
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    t = np.arange(27_200) / 16000.0
    signal = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    with torch.no_grad():
        ref, ref_len = wrapper(torch.from_numpy(signal)[None], torch.tensor([signal.size]))
    got, got_len = session.run(None, {"waveform": signal[None], "length": np.array([signal.size], dtype=np.int64)})
    diff = float(np.abs(ref.numpy() - got).max()) if ref.shape == got.shape else float("inf")
    if diff > PREPROCESSOR_TOLERANCE or int(ref_len[0]) != int(got_len[0]):
        raise SubtoneError(
            f"{source}: the exported preprocessor does not reproduce NeMo's features "
            f"(max difference {diff:.2g}, tolerance {PREPROCESSOR_TOLERANCE}); its settings are not ones subtone implements"
        )


def _gather_weights(path: Path, role: str) -> dict[str, str]:
    """Weights past ONNX's 2 GB protobuf limit (0.6 B-parameter models) go into one `<graph>.data` file.

    The exporter writes one file per tensor; one file is tidier, and the manifest can hash it.
    Returns {role: file name} when there is such a file.
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    graph = onnx.load(str(path), load_external_data=False)
    tensors = list(graph.graph.initializer)
    for node in graph.graph.node:  # Constant nodes keep big values (positional encodings) as attributes
        for attribute in node.attribute:
            tensors.extend([attribute.t, *attribute.tensors])
    locations = {
        entry.value
        for tensor in tensors
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }
    if not locations:
        return {}
    del graph
    full = onnx.load(str(path), load_external_data=True)
    data_name = path.name + ".data"
    onnx.save(full, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name)
    for name in locations - {data_name}:
        (path.parent / name).unlink(missing_ok=True)
    return {role: data_name}


def _subsampling_of(model) -> dict[str, Any] | None:
    """NeMo's calc_length arithmetic for the encoder's convolutional subsampling, if it has one."""
    pre = getattr(model.encoder, "pre_encode", None)
    needed = ("_left_padding", "_right_padding", "_kernel_size", "_stride", "_ceil_mode", "_sampling_num")
    if pre is None or not all(hasattr(pre, a) for a in needed):
        return None
    if getattr(model.encoder, "reduction_subsampling", None) is not None:
        return None
    return {
        "all_paddings": int(pre._left_padding + pre._right_padding),
        "kernel_size": int(pre._kernel_size),
        "stride": int(pre._stride),
        "ceil_mode": bool(pre._ceil_mode),
        "repeat": int(pre._sampling_num),
        "factor": int(getattr(model.encoder, "subsampling_factor", 0) or 0),
    }


def _greedy_max_symbols(cfg) -> int:
    greedy = (cfg.get("decoding") or {}).get("greedy") or {}
    value = greedy.get("max_symbols", greedy.get("max_symbols_per_step"))
    return int(value) if value else 10


def _tdt_durations(cfg) -> list[int]:
    decoding = cfg.get("decoding") or {}
    if decoding.get("model_type") == "tdt" and decoding.get("durations"):
        return [int(d) for d in decoding["durations"]]
    loss = cfg.get("loss") or {}
    if loss.get("loss_name") == "tdt":
        return [int(d) for d in (loss.get("tdt_kwargs") or {}).get("durations", [])]
    return []


def _write_tokenizer(model, out: Path, source: str) -> dict[str, Any]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        labels = _char_labels(model)
        if not labels:
            raise SubtoneError(f"{source}: neither a tokenizer nor a character vocabulary was found")
        (out / "vocab.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
        return {"files": {"tokenizer": "vocab.json"}, "tokenizer": "chars", "vocab_size": len(labels)}
    processor = getattr(tokenizer, "tokenizer", None)
    if not hasattr(processor, "serialized_model_proto"):
        raise SubtoneError(
            f"{source}: tokenizer {type(tokenizer).__name__} is not supported "
            "(expected a SentencePiece tokenizer or a character vocabulary)"
        )
    (out / "tokenizer.model").write_bytes(processor.serialized_model_proto())
    return {
        "files": {"tokenizer": "tokenizer.model"},
        "tokenizer": "sentencepiece",
        "vocab_size": int(tokenizer.vocab_size),
    }


def _char_labels(model) -> list[str]:
    for owner in (getattr(model, "joint", None), getattr(model, "decoder", None)):
        labels = getattr(owner, "vocabulary", None)
        if labels:
            return [str(x) for x in labels]
    return [str(x) for x in (model.cfg.get("labels") or [])]


def _language_of(model) -> str:
    for key in ("language", "lang", "target_lang"):
        value = model.cfg.get(key)
        if isinstance(value, str) and value:
            return value
    labels = _char_labels(model) if getattr(model, "tokenizer", None) is None else []
    if any("\uac00" <= ch <= "\ud7a3" for label in labels for ch in label):
        return "ko"
    log.info("the checkpoint does not say its language; recorded as 'und' (pass --language xx to set it)")
    return "und"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
