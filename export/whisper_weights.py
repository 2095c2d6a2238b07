"""Whisper's weights as float32 numpy arrays, named once, read from CTranslate2 variables.

Both graph builders take these: the ONNX one (whisper_onnx, what `subtone export whisper` runs)
and the PyTorch reference (whisper_torch, tests only). Names follow the PyTorch module tree
(`decoder_blocks.0.cross.key.weight`), so the reference loads them as its state dict. Linear
weights keep PyTorch's [out, in] layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class WhisperDims:
    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_text_ctx: int = 448
    n_state: int = 384
    n_head: int = 6
    n_audio_layer: int = 4
    n_text_layer: int = 4
    n_vocab: int = 51864

    @property
    def head_dim(self) -> int:
        return self.n_state // self.n_head


def _count_layers(variables: Mapping[str, np.ndarray], prefix: str) -> int:
    names = {k.split("/")[1] for k in variables if k.startswith(f"{prefix}/layer_")}
    return sum(1 for n in names if n.removeprefix("layer_").isdigit())


def dims_from_ct2(variables: Mapping[str, np.ndarray]) -> WhisperDims:
    """The model's sizes, read off the weight shapes (any Whisper size)."""
    n_vocab, n_state = variables["decoder/embeddings/weight"].shape
    dims = WhisperDims(
        n_mels=variables["encoder/conv1/weight"].shape[1],
        n_audio_ctx=variables["encoder/position_encodings/encodings"].shape[0],
        n_text_ctx=variables["decoder/position_encodings/encodings"].shape[0],
        n_state=n_state,
        n_head=int(variables["encoder/num_heads"]),
        n_audio_layer=_count_layers(variables, "encoder"),
        n_text_layer=_count_layers(variables, "decoder"),
        n_vocab=n_vocab,
    )
    if int(variables["decoder/num_heads"]) != dims.n_head:
        raise ValueError("encoder and decoder head counts differ; not a Whisper layout this code knows")
    return dims


class _Mapper:
    """Copies CTranslate2 variables to our names and remembers which ones it used."""

    def __init__(self, variables: Mapping[str, np.ndarray], n_state: int) -> None:
        self.variables = variables
        self.d = n_state
        self.out: dict[str, np.ndarray] = {}
        self.used: set[str] = set()

    def take(self, name: str) -> np.ndarray:
        self.used.add(name)
        return np.ascontiguousarray(self.variables[name], dtype=np.float32)

    def linear(self, dst: str, src: str, part: int | None = None, bias: bool = True) -> None:
        """`part` picks the i-th n_state rows of a fused projection (CTranslate2 fuses QKV and cross KV)."""
        w, b = self.take(f"{src}/weight"), self.take(f"{src}/bias")
        if part is not None:
            rows = slice(part * self.d, (part + 1) * self.d)
            w, b = w[rows], b[rows]
        self.out[f"{dst}.weight"] = np.ascontiguousarray(w)
        if bias:
            self.out[f"{dst}.bias"] = np.ascontiguousarray(b)
        elif np.abs(b).max() != 0:
            raise ValueError(f"{src}: expected a zero key bias (Whisper keys have none)")

    def norm(self, dst: str, src: str) -> None:
        self.out[f"{dst}.weight"] = self.take(f"{src}/gamma")
        self.out[f"{dst}.bias"] = self.take(f"{src}/beta")

    def self_attention(self, dst: str, src: str) -> None:
        self.norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        self.linear(f"{dst}.attn.query", f"{src}/self_attention/linear_0", 0)
        self.linear(f"{dst}.attn.key", f"{src}/self_attention/linear_0", 1, bias=False)
        self.linear(f"{dst}.attn.value", f"{src}/self_attention/linear_0", 2)
        self.linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")

    def cross_attention(self, dst: str, src: str) -> None:
        self.norm(f"{dst}.cross_ln", f"{src}/attention/layer_norm")
        self.linear(f"{dst}.cross.query", f"{src}/attention/linear_0")
        self.linear(f"{dst}.cross.key", f"{src}/attention/linear_1", 0, bias=False)
        self.linear(f"{dst}.cross.value", f"{src}/attention/linear_1", 1)
        self.linear(f"{dst}.cross.out", f"{src}/attention/linear_2")

    def mlp(self, dst: str, src: str) -> None:
        self.norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        self.linear(f"{dst}.mlp.fc1", f"{src}/ffn/linear_0")
        self.linear(f"{dst}.mlp.fc2", f"{src}/ffn/linear_1")


def weights_from_ct2(variables: Mapping[str, np.ndarray]) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    """Float32 weights (float16 upcast) under our names; every CTranslate2 weight must be used."""
    dims = dims_from_ct2(variables)
    m = _Mapper(variables, dims.n_state)
    m.out["conv1.weight"], m.out["conv1.bias"] = m.take("encoder/conv1/weight"), m.take("encoder/conv1/bias")
    m.out["conv2.weight"], m.out["conv2.bias"] = m.take("encoder/conv2/weight"), m.take("encoder/conv2/bias")
    m.out["audio_positions"] = m.take("encoder/position_encodings/encodings")
    for i in range(dims.n_audio_layer):
        m.self_attention(f"encoder_blocks.{i}", f"encoder/layer_{i}")
        m.mlp(f"encoder_blocks.{i}", f"encoder/layer_{i}")
    m.norm("encoder_ln", "encoder/layer_norm")
    m.out["token_embedding.weight"] = m.take("decoder/embeddings/weight")
    m.used.add("decoder/projection/weight")  # an alias of the embedding: the output layer is tied
    m.out["text_positions"] = m.take("decoder/position_encodings/encodings")
    for i in range(dims.n_text_layer):
        m.self_attention(f"decoder_blocks.{i}", f"decoder/layer_{i}")
        m.cross_attention(f"decoder_blocks.{i}", f"decoder/layer_{i}")
        m.mlp(f"decoder_blocks.{i}", f"decoder/layer_{i}")
    m.norm("decoder_ln", "decoder/layer_norm")
    projection = variables.get("decoder/projection/weight")
    if projection is not None and projection is not variables["decoder/embeddings/weight"]:
        if not np.array_equal(projection, variables["decoder/embeddings/weight"]):
            raise ValueError("decoder/projection/weight differs from the embedding; Whisper ties them")
    unmapped = {k for k, v in variables.items() if np.ndim(v) > 0} - m.used
    if unmapped:
        raise ValueError(f"CTranslate2 variables not mapped: {sorted(unmapped)}")
    return dims, m.out
