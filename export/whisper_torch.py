"""A minimal PyTorch Whisper shaped for ONNX export (export-time code only).

Two modules share one set of weights:
- `WhisperEncoderGraph`: log-mel [B, 80, 2·S] → cross-attention keys and values of
  every decoder layer, [B, H, S, Dh] each. Computing them here means the decoder
  step never touches the audio projections again.
- `WhisperDecoderStepGraph`: new tokens [B, N] plus the per-layer self-attention
  cache [B, H, P, Dh] → logits [B, N, V] and the cache grown to P + N.

Attention is written out with matmul + softmax (no scaled_dot_product_attention),
which the TorchScript ONNX exporter turns into plain MatMul/Softmax nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def _split_heads(x: Tensor, n_head: int) -> Tensor:
    """[B, T, D] → [B, H, T, Dh]."""
    b, t, d = x.shape
    return x.view(b, t, n_head, d // n_head).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """[B, H, T, Dh] → [B, T, D]."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q * scale, k.transpose(-1, -2))
    if mask is not None:
        scores = scores + mask
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class SelfAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.n_head
        return _split_heads(self.query(x), h), _split_heads(self.key(x), h), _split_heads(self.value(x), h)


class CrossAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def key_value(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        return _split_heads(self.key(audio), self.n_head), _split_heads(self.value(audio), self.n_head)


class Mlp(nn.Module):
    def __init__(self, n_state: int):
        super().__init__()
        self.fc1 = nn.Linear(n_state, 4 * n_state)
        self.fc2 = nn.Linear(4 * n_state, n_state)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderBlock(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.attn_ln = nn.LayerNorm(dims.n_state)
        self.attn = SelfAttention(dims.n_state, dims.n_head)
        self.mlp_ln = nn.LayerNorm(dims.n_state)
        self.mlp = Mlp(dims.n_state)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.attn.project(self.attn_ln(x))
        x = x + self.attn.out(_merge_heads(_attend(q, k, v)))
        return x + self.mlp(self.mlp_ln(x))


class DecoderBlock(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.attn_ln = nn.LayerNorm(dims.n_state)
        self.attn = SelfAttention(dims.n_state, dims.n_head)
        self.cross_ln = nn.LayerNorm(dims.n_state)
        self.cross = CrossAttention(dims.n_state, dims.n_head)
        self.mlp_ln = nn.LayerNorm(dims.n_state)
        self.mlp = Mlp(dims.n_state)

    def forward(
        self, x: Tensor, past_k: Tensor, past_v: Tensor, cross_k: Tensor, cross_v: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.attn.project(self.attn_ln(x))
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        x = x + self.attn.out(_merge_heads(_attend(q, k, v, mask)))
        q = _split_heads(self.cross.query(self.cross_ln(x)), self.cross.n_head)
        x = x + self.cross.out(_merge_heads(_attend(q, cross_k, cross_v)))
        return x + self.mlp(self.mlp_ln(x)), k, v


class WhisperModel(nn.Module):
    """Holds the weights; `encoder` and `decoder_step` are the two exported graphs."""

    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.dims = dims
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_state, 3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_state, dims.n_state, 3, stride=2, padding=1)
        self.audio_positions = nn.Parameter(torch.zeros(dims.n_audio_ctx, dims.n_state))
        self.encoder_blocks = nn.ModuleList(EncoderBlock(dims) for _ in range(dims.n_audio_layer))
        self.encoder_ln = nn.LayerNorm(dims.n_state)
        self.token_embedding = nn.Embedding(dims.n_vocab, dims.n_state)
        self.text_positions = nn.Parameter(torch.zeros(dims.n_text_ctx, dims.n_state))
        self.decoder_blocks = nn.ModuleList(DecoderBlock(dims) for _ in range(dims.n_text_layer))
        self.decoder_ln = nn.LayerNorm(dims.n_state)

    def encode(self, mel: Tensor) -> Tensor:
        """Log-mel [B, 80, 2·S] → audio features [B, S, D]; S ≤ 1500 (shorter = trimmed window)."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.audio_positions[: x.shape[1]]
        for block in self.encoder_blocks:
            x = block(x)
        return self.encoder_ln(x)

    def cross_key_values(self, audio: Tensor) -> list[Tensor]:
        """Per decoder layer: cross keys then values, each [B, H, S, Dh]."""
        ks, vs = zip(*(block.cross.key_value(audio) for block in self.decoder_blocks))
        return [*ks, *vs]

    def decode(self, tokens: Tensor, *caches: Tensor) -> list[Tensor]:
        """`caches`: self_k × L, self_v × L, cross_k × L, cross_v × L, each [B, H, T, Dh].

        Returns logits [B, N, V], then the grown self_k × L and self_v × L.
        One tensor per layer (not one stacked tensor) so nothing is sliced or copied per step.
        """
        n_layer = len(self.decoder_blocks)
        self_k, self_v = caches[:n_layer], caches[n_layer : 2 * n_layer]
        cross_k, cross_v = caches[2 * n_layer : 3 * n_layer], caches[3 * n_layer :]
        past = self_k[0].shape[2]
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.text_positions[past : past + n]
        # Causal mask over [past + new] keys for the new queries.
        rows = torch.arange(n, device=tokens.device).unsqueeze(1) + past
        cols = torch.arange(past + n, device=tokens.device).unsqueeze(0)
        mask = torch.where(cols > rows, torch.tensor(float("-inf")), torch.tensor(0.0))
        new_k, new_v = [], []
        for i, block in enumerate(self.decoder_blocks):
            x, k, v = block(x, self_k[i], self_v[i], cross_k[i], cross_v[i], mask)
            new_k.append(k)
            new_v.append(v)
        x = self.decoder_ln(x)
        b, t, d = x.shape
        # Tied output layer; the exporter folds a transposed copy of the embedding,
        # which whisper_export.tie_output_projection removes again.
        logits = F.linear(x.reshape(b * t, d), self.token_embedding.weight).reshape(b, t, -1)
        return [logits, *new_k, *new_v]


class WhisperEncoderGraph(nn.Module):
    def __init__(self, model: WhisperModel):
        super().__init__()
        self.model = model

    def forward(self, mel: Tensor) -> list[Tensor]:
        return self.model.cross_key_values(self.model.encode(mel))


class WhisperDecoderStepGraph(nn.Module):
    def __init__(self, model: WhisperModel):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, *caches: Tensor) -> list[Tensor]:
        return self.model.decode(tokens, *caches)


def dims_from_ct2(variables: dict[str, np.ndarray]) -> WhisperDims:
    n_vocab, n_state = variables["decoder/embeddings/weight"].shape

    def layers(prefix: str) -> int:
        names = {k.split("/")[1] for k in variables if k.startswith(f"{prefix}/layer_")}
        return sum(1 for n in names if n.removeprefix("layer_").isdigit())

    return WhisperDims(
        n_mels=variables["encoder/conv1/weight"].shape[1],
        n_audio_ctx=variables["encoder/position_encodings/encodings"].shape[0],
        n_text_ctx=variables["decoder/position_encodings/encodings"].shape[0],
        n_state=n_state,
        n_head=int(variables["encoder/num_heads"]),
        n_audio_layer=layers("encoder"),
        n_text_layer=layers("decoder"),
        n_vocab=n_vocab,
    )


def load_from_ct2(variables: dict[str, np.ndarray]) -> WhisperModel:
    """Builds the float32 model from CTranslate2 Whisper variables (float16 upcast)."""
    dims = dims_from_ct2(variables)
    if int(variables["decoder/num_heads"]) != dims.n_head:
        raise ValueError("encoder and decoder head counts differ; not a Whisper layout this code knows")
    model = WhisperModel(dims)
    d = dims.n_state
    state: dict[str, Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> Tensor:
        used.add(name)
        return torch.from_numpy(np.asarray(variables[name], dtype=np.float32).copy())

    def linear(dst: str, src: str, rows: slice | None = None, bias: bool = True) -> None:
        w, b = take(f"{src}/weight"), take(f"{src}/bias")
        if rows is not None:
            w, b = w[rows], b[rows]
        state[f"{dst}.weight"] = w
        if bias:
            state[f"{dst}.bias"] = b
        elif b.abs().max() != 0:
            raise ValueError(f"{src}: expected a zero key bias (Whisper keys have none)")

    def norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = take(f"{src}/gamma")
        state[f"{dst}.bias"] = take(f"{src}/beta")

    for conv in ("conv1", "conv2"):
        state[f"{conv}.weight"] = take(f"encoder/{conv}/weight")
        state[f"{conv}.bias"] = take(f"encoder/{conv}/bias")
    state["audio_positions"] = take("encoder/position_encodings/encodings")
    norm("encoder_ln", "encoder/layer_norm")
    q, k, v = slice(0, d), slice(d, 2 * d), slice(2 * d, 3 * d)

    def self_attention(dst: str, src: str) -> None:
        # CTranslate2 fuses Q, K and V into one projection; its K bias is zero.
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.attn.query", f"{src}/self_attention/linear_0", q)
        linear(f"{dst}.attn.key", f"{src}/self_attention/linear_0", k, bias=False)
        linear(f"{dst}.attn.value", f"{src}/self_attention/linear_0", v)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")

    def mlp(dst: str, src: str) -> None:
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.fc2", f"{src}/ffn/linear_1")

    for i in range(dims.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder_blocks.{i}"
        self_attention(dst, src)
        mlp(dst, src)
    state["token_embedding.weight"] = take("decoder/embeddings/weight")
    used.add("decoder/projection/weight")  # alias of the embedding: the output layer is tied
    state["text_positions"] = take("decoder/position_encodings/encodings")
    norm("decoder_ln", "decoder/layer_norm")
    for i in range(dims.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder_blocks.{i}"
        self_attention(dst, src)
        norm(f"{dst}.cross_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.cross.query", f"{src}/attention/linear_0")
        linear(f"{dst}.cross.key", f"{src}/attention/linear_1", slice(0, d), bias=False)
        linear(f"{dst}.cross.value", f"{src}/attention/linear_1", slice(d, 2 * d))
        linear(f"{dst}.cross.out", f"{src}/attention/linear_2")
        mlp(dst, src)
    weights = {k for k, v in variables.items() if v.ndim > 0}
    if weights - used:
        raise ValueError(f"CTranslate2 variables not mapped: {sorted(weights - used)}")
    model.load_state_dict(state, strict=True)
    return model.eval()
