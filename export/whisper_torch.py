"""A minimal PyTorch Whisper: the tests' reference for the ONNX graphs (needs torch: the `train` extra).

`subtone export whisper` does not use it: whisper_onnx writes the graphs without torch. It
reads the same weights (whisper_weights) and computes Whisper's maths the PyTorch way, so the
tests compare every exported graph against an independent implementation.

`WhisperModel` mirrors the two graphs: `encode` + `cross_key_values` (log-mel [B, 80, 2·S] →
every decoder layer's cross keys and values, [B, H, S, Dh] each) and `decode` (new tokens
[B, N] plus the per-layer self-attention cache [B, H, P, Dh] → logits [B, N, V] and the cache
grown to P + N).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from subtone.export.whisper_weights import WhisperDims, weights_from_ct2


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
    """Holds the weights; `encode` + `cross_key_values` and `decode` are the two graphs' maths."""

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
        # Tied output layer: the token embedding is the output projection.
        logits = F.linear(x.reshape(b * t, d), self.token_embedding.weight).reshape(b, t, -1)
        return [logits, *new_k, *new_v]


def load_from_ct2(variables: dict[str, np.ndarray]) -> WhisperModel:
    """The float32 model from CTranslate2 Whisper variables (float16 upcast)."""
    dims, weights = weights_from_ct2(variables)
    model = WhisperModel(dims)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=True)
    return model.eval()
