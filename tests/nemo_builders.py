"""Random-weight NeMo ASR models built from NeMo's own config schema (needs nemo_toolkit[asr]).

Used by the NeMo export tests and bench/nemo_speed.py. The structure follows NeMo's FastConformer
configs (dw_striding ×8 subsampling, rel-pos attention, Slaney log-mel with per-feature
normalisation); sizes are parameters so tests can stay tiny and the benchmark can be realistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

DURATIONS = [0, 1, 2, 3, 4]

# Hangul compatibility jamo plus common syllables: a character vocabulary like a Korean model's.
KOREAN_LABELS = [" "] + list("가나다라마바사아자차카타파하는을를이가에의도고로서한했다요니까") + list("ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎ")


def train_sentencepiece(texts: Iterable[str], out_dir: Path, vocab_size: int = 64) -> Path:
    """A tiny SentencePiece BPE model in a NeMo tokenizer folder (tokenizer.model + vocab.txt)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([t.lower() for t in texts]),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
    (out_dir / "vocab.txt").write_text(
        "".join(sp.id_to_piece(i) + "\n" for i in range(sp.get_piece_size())), encoding="utf-8"
    )
    return out_dir


def _preprocessor(features: int, pad_to: int = 0) -> dict[str, Any]:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": 16000,
        "normalize": "per_feature",
        "window_size": 0.025,
        "window_stride": 0.01,
        "window": "hann",
        "features": features,
        "n_fft": 512,
        "log": True,
        "frame_splicing": 1,
        "dither": 0.00001,
        "pad_to": pad_to,
        "pad_value": 0.0,
    }


def _common(features: int, pad_to: int = 0) -> dict[str, Any]:
    # transcribe() reads validation_ds options; no manifest means no dataset is built.
    return {
        "sample_rate": 16000,
        "preprocessor": _preprocessor(features, pad_to),
        "validation_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 1, "shuffle": False, "use_start_end_token": False},
    }


def _encoder(
    features: int, d_model: int, n_layers: int, n_heads: int, subsampling: str = "dw_striding", factor: int = 8
) -> dict[str, Any]:
    return {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": features,
        "feat_out": -1,
        "n_layers": n_layers,
        "d_model": d_model,
        "subsampling": subsampling,
        "subsampling_factor": factor,
        "subsampling_conv_channels": d_model,
        "causal_downsampling": False,
        "ff_expansion_factor": 4,
        "self_attention_model": "rel_pos",
        "n_heads": n_heads,
        "att_context_size": [-1, -1],
        "xscaling": True,
        "untie_biases": True,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": 9,
        "conv_norm_type": "batch_norm",
        "dropout": 0.1,
        "dropout_pre_encoder": 0.1,
        "dropout_emb": 0.0,
        "dropout_att": 0.1,
    }


def ctc_config(
    *,
    tokenizer_dir: Path | None = None,
    labels: Sequence[str] | None = None,
    features: int = 80,
    d_model: int = 32,
    n_layers: int = 1,
    n_heads: int = 2,
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        **_common(features),
        "encoder": _encoder(features, d_model, n_layers, n_heads),
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": d_model,
            "num_classes": -1 if labels is None else len(labels),
            "vocabulary": [] if labels is None else list(labels),
        },
        "decoding": {"strategy": "greedy_batch"},
    }
    if labels is None:
        cfg["tokenizer"] = {"dir": str(tokenizer_dir), "type": "bpe"}
    else:
        cfg["labels"] = list(labels)
    return cfg


def transducer_config(
    *,
    tokenizer_dir: Path | None = None,
    labels: Sequence[str] | None = None,
    tdt: bool = False,
    features: int = 80,
    d_model: int = 32,
    n_layers: int = 1,
    n_heads: int = 2,
    pred_hidden: int = 32,
    joint_hidden: int = 32,
    conformer: bool = False,
) -> dict[str, Any]:
    """FastConformer transducer; `conformer=True`: the older Conformer front (striding ×4, pad_to 16)."""
    vocab = [] if labels is None else list(labels)
    cfg: dict[str, Any] = {
        **_common(features, pad_to=16 if conformer else 0),
        "labels": vocab,
        "model_defaults": {"enc_hidden": d_model, "pred_hidden": pred_hidden, "joint_hidden": joint_hidden},
        "encoder": _encoder(
            features, d_model, n_layers, n_heads, *(("striding", 4) if conformer else ("dw_striding", 8))
        ),
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "vocab_size": len(vocab),
            "prednet": {"pred_hidden": pred_hidden, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.2},
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": False,
            "fused_batch_size": -1,
            "num_classes": len(vocab),
            "vocabulary": vocab,
            "jointnet": {
                "joint_hidden": joint_hidden,
                "activation": "relu",
                "dropout": 0.2,
                "encoder_hidden": d_model,
                "pred_hidden": pred_hidden,
            },
        },
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}},
        "loss": {"loss_name": "default"},
    }
    if tdt:
        cfg["joint"]["num_extra_outputs"] = len(DURATIONS)
        cfg["decoding"].update({"model_type": "tdt", "durations": DURATIONS})
        cfg["loss"] = {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1}}
    if labels is None:
        cfg["tokenizer"] = {"dir": str(tokenizer_dir), "type": "bpe"}
    return cfg


def build_model(kind: str, cfg: dict[str, Any], calibration_audio=None, seed: int = 0):
    """A NeMo model of `kind` ("ctc", "ctc_char", "rnnt", "rnnt_char", "tdt") in eval mode.

    Random weights make every frame pick the same token. With `calibration_audio` (16 kHz float32
    speech) the output layer is re-aimed at what varies between that clip's frames, scaled up, and
    the blank bias set so blank wins about half the frames: decoded sequences then hold many
    distinct tokens, so a parity test comparing them can fail.
    """
    import torch
    from omegaconf import OmegaConf

    from nemo.collections.asr.models import (
        EncDecCTCModel,
        EncDecCTCModelBPE,
        EncDecRNNTBPEModel,
        EncDecRNNTModel,
    )

    classes = {
        "ctc": EncDecCTCModelBPE,
        "ctc_char": EncDecCTCModel,
        "rnnt": EncDecRNNTBPEModel,
        "tdt": EncDecRNNTBPEModel,
        "rnnt_char": EncDecRNNTModel,
    }
    torch.manual_seed(seed)
    model = classes[kind](cfg=OmegaConf.create(cfg)).eval()
    if calibration_audio is not None:
        _calibrate(model, kind, torch.as_tensor(calibration_audio, dtype=torch.float32))
    return model


def _calibrate(model, kind: str, audio) -> None:
    import torch

    with torch.no_grad():
        feats, feat_len = model.preprocessor(input_signal=audio[None], length=torch.tensor([audio.numel()]))
        encoded, _ = model.encoder(audio_signal=feats, length=feat_len)  # [1, D, T]
        if kind.startswith("ctc"):
            final = model.decoder.decoder_layers[-1]  # Conv1d(D, V+1, 1)
            hidden = encoded[0].T  # [T, D]
            weight = final.weight[:, :, 0]
            blank = weight.shape[0] - 1
        else:
            sos = torch.full([1, 1], model.decoder.blank_idx, dtype=torch.long)
            g, _ = model.decoder.predict(sos, None, add_sos=False, batch_size=1)  # [1, 1, H]
            f = model.joint.project_encoder(encoded.transpose(1, 2))  # [1, T, H]
            hidden = model.joint.joint_net[:-1](f + model.joint.project_prednet(g))[0]  # [T, H]
            final = model.joint.joint_net[-1]
            weight = final.weight
            blank = model.decoder.blank_idx
        mean = hidden.mean(dim=0)
        weight -= torch.outer(weight @ mean, mean) / mean.dot(mean)
        final.bias.zero_()
        logits = hidden @ weight.T
        weight *= 8.0 / logits.std(dim=0).mean()
        logits = hidden @ weight.T
        n_tokens = model.joint.num_classes_with_blank if not kind.startswith("ctc") else weight.shape[0]
        others = torch.cat([logits[:, :blank], logits[:, blank + 1 : n_tokens]], dim=1).max(dim=1).values
        final.bias[blank] = (others - logits[:, blank]).median()
