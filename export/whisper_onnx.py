"""Whisper's encoder and cached decoder step written directly as ONNX graphs (numpy + onnx, no torch).

- `encoder_graph`: mel [B, n_mels, F] → cross_k_i, cross_v_i [B, H, F/2, Dh] for every decoder
  layer i. F may be shorter than 3000 frames (a trimmed window): the positional embedding is
  sliced to F/2 rows inside the graph.
- `decoder_graph`: tokens [B, N], self_k_i, self_v_i [B, H, P, Dh], cross_k_i, cross_v_i
  [B, H, A, Dh] → logits [B, N, V], self_k_i_out, self_v_i_out [B, H, P+N, Dh]. The prompt runs
  with P = 0 and a causal mask; later steps pass one token.

The maths is Whisper's: GELU in its erf form, LayerNorm with eps 1e-5, softmax(q·kᵀ/√Dh)·v,
convolutions of width 3 (the second with stride 2). Only standard ONNX operators at opset 17
(LayerNormalization included), so any ONNX Runtime ≥ 1.17 and any execution provider runs it;
ONNX Runtime fuses the GELU and MatMul+Add patterns itself when it loads the graph.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from subtone.export.whisper_weights import WhisperDims
from subtone.service.errors import SubtoneError

OPSET = 17
IR_VERSION = 8
"""Pinned (not onnx's newest) so older ONNX Runtime releases load the graphs, and so the bytes do
not change with the onnx package's version."""
LN_EPS = 1e-5
MAX_WEIGHT_BYTES = 2**31 - 2**24
"""One ONNX file (a protobuf) holds at most 2 GiB; leave room for everything but the weights."""

Weights = dict[str, np.ndarray]


def cache_names(n_layer: int) -> dict[str, list[str]]:
    """Graph input/output names of the per-layer caches, in graph order."""
    self_in = [f"self_k_{i}" for i in range(n_layer)] + [f"self_v_{i}" for i in range(n_layer)]
    return {
        "self": self_in,
        "self_out": [f"{n}_out" for n in self_in],
        "cross": [f"cross_k_{i}" for i in range(n_layer)] + [f"cross_v_{i}" for i in range(n_layer)],
    }


class GraphBuilder:
    """Collects nodes and initializers; value names are scope/Op_counter, so rebuilding gives the same bytes."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.scope = ""
        self._count = 0

    def weight(self, name: str, array: np.ndarray) -> str:
        """A float32 initializer named `name` (added once)."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)
        return name

    def const(self, value: float | int | Sequence[int], dtype: type = np.int64) -> str:
        """A small constant (a shape, a scalar) as an initializer, shared by every user of the same value."""
        array = np.array(value, dtype=dtype)
        name = f"const/{array.dtype}/{'_'.join(str(v) for v in array.reshape(-1))}{'' if array.ndim else '/scalar'}"
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs: object) -> str:
        """Adds one node; returns its output's name (`output`, e.g. a graph output, or a generated one)."""
        base = self._node_name(op_type)
        out = output or f"{base}:0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=base, **attrs))
        return out

    def split(self, x: str, sizes: Sequence[int], axis: int, outputs: Sequence[str] | None = None) -> list[str]:
        """Split `x` along `axis` into len(sizes) tensors (named `outputs` when given)."""
        base = self._node_name("Split")
        names = list(outputs) if outputs else [f"{base}:{i}" for i in range(len(sizes))]
        self.nodes.append(helper.make_node("Split", [x, self.const(list(sizes))], names, name=base, axis=axis))
        return names

    def _node_name(self, op_type: str) -> str:
        self._count += 1
        return f"{self.scope}{op_type}_{self._count}"

    def model(self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        size = sum(len(t.raw_data) for t in self.initializers.values())
        if size > MAX_WEIGHT_BYTES:
            raise SubtoneError(
                f"the {name} graph would hold {size / 2**30:.1f} GiB of weights, over ONNX's 2 GiB per file; "
                "Whisper sizes above small are not supported yet (they need external weight files)"
            )
        graph = helper.make_graph(self.nodes, name, inputs, outputs, list(self.initializers.values()))
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="subtone", ir_version=IR_VERSION
        )
        onnx.checker.check_model(model)
        return model


# -- building blocks ---------------------------------------------------------------------------


def layer_norm(g: GraphBuilder, x: str, w: Weights, prefix: str) -> str:
    gamma, beta = g.weight(f"{prefix}.weight", w[f"{prefix}.weight"]), g.weight(f"{prefix}.bias", w[f"{prefix}.bias"])
    return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=LN_EPS)


def linear(g: GraphBuilder, x: str, name: str, weight: np.ndarray, bias: np.ndarray | None) -> str:
    """x·Wᵀ + b; W is stored transposed ([in, out]) so the graph needs no Transpose."""
    y = g.op("MatMul", x, g.weight(f"{name}.weight", weight.T))
    return y if bias is None else g.op("Add", y, g.weight(f"{name}.bias", bias))


def gelu(g: GraphBuilder, x: str) -> str:
    """x·½·(1 + erf(x/√2)), in the node order ONNX Runtime's GELU fusion recognises."""
    erf = g.op("Erf", g.op("Div", x, g.const(math.sqrt(2.0), np.float32)))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(1.0, np.float32))), g.const(0.5, np.float32))


def mlp(g: GraphBuilder, x: str, w: Weights, prefix: str) -> str:
    h = layer_norm(g, x, w, f"{prefix}.mlp_ln")
    h = linear(g, h, f"{prefix}.mlp.fc1", w[f"{prefix}.mlp.fc1.weight"], w[f"{prefix}.mlp.fc1.bias"])
    h = linear(g, gelu(g, h), f"{prefix}.mlp.fc2", w[f"{prefix}.mlp.fc2.weight"], w[f"{prefix}.mlp.fc2.bias"])
    return g.op("Add", x, h)


def split_heads(g: GraphBuilder, x: str, dims: WhisperDims, groups: int, outputs: Sequence[str] | None = None) -> list[str]:
    """[B, T, groups·D] → `groups` tensors [B, H, T, Dh] (fused projections are split here)."""
    x = g.op("Reshape", x, g.const([0, 0, groups * dims.n_head, dims.head_dim]))
    x = g.op("Transpose", x, perm=[0, 2, 1, 3])
    return [x] if groups == 1 else g.split(x, [dims.n_head] * groups, axis=1, outputs=outputs)


def merge_heads(g: GraphBuilder, x: str, dims: WhisperDims) -> str:
    """[B, H, T, Dh] → [B, T, D]."""
    return g.op("Reshape", g.op("Transpose", x, perm=[0, 2, 1, 3]), g.const([0, 0, dims.n_state]))


def attend(g: GraphBuilder, q: str, k: str, v: str, mask: str | None = None) -> str:
    """softmax(q·kᵀ + mask)·v; the 1/√Dh scale is already folded into the query projection."""
    scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
    if mask is not None:
        scores = g.op("Add", scores, mask)
    return g.op("MatMul", g.op("Softmax", scores, axis=-1), v)


def _query_scale(dims: WhisperDims) -> float:
    # Folded into Wq and bq: for Dh = 64 (every Whisper size) it is 1/8, a power of two, so the
    # folded weights give bit-for-bit the same query as scaling it in the graph.
    return 1.0 / math.sqrt(dims.head_dim)


def self_attention(
    g: GraphBuilder,
    x: str,
    w: Weights,
    prefix: str,
    dims: WhisperDims,
    cache: tuple[str, str, str, str] | None = None,
    mask: str | None = None,
) -> str:
    """Pre-norm self-attention with its residual.

    `cache` = (past_k, past_v, k_out, v_out) names: the new keys/values are appended to the past
    ones and become graph outputs (the decoder step); the encoder has none.
    """
    p, s = f"{prefix}.attn", _query_scale(dims)
    qkv_w = np.concatenate([w[f"{p}.query.weight"] * s, w[f"{p}.key.weight"], w[f"{p}.value.weight"]])
    qkv_b = np.concatenate([w[f"{p}.query.bias"] * s, np.zeros(dims.n_state, np.float32), w[f"{p}.value.bias"]])
    # One MatMul for Q, K and V (as CTranslate2 stores them): one GEMM instead of three.
    h = linear(g, layer_norm(g, x, w, f"{prefix}.attn_ln"), f"{p}.qkv", qkv_w, qkv_b)
    q, k, v = split_heads(g, h, dims, 3)
    if cache is not None:
        past_k, past_v, k_out, v_out = cache
        k = g.op("Concat", past_k, k, axis=2, output=k_out)
        v = g.op("Concat", past_v, v, axis=2, output=v_out)
    y = merge_heads(g, attend(g, q, k, v, mask), dims)
    return g.op("Add", x, linear(g, y, f"{p}.out", w[f"{p}.out.weight"], w[f"{p}.out.bias"]))


def cross_attention(g: GraphBuilder, x: str, w: Weights, prefix: str, dims: WhisperDims, k: str, v: str) -> str:
    """Pre-norm attention over the audio's keys/values (computed by the encoder graph), with its residual."""
    p, s = f"{prefix}.cross", _query_scale(dims)
    h = layer_norm(g, x, w, f"{prefix}.cross_ln")
    h = linear(g, h, f"{p}.query", w[f"{p}.query.weight"] * s, w[f"{p}.query.bias"] * s)
    (q,) = split_heads(g, h, dims, 1)
    y = merge_heads(g, attend(g, q, k, v), dims)
    return g.op("Add", x, linear(g, y, f"{p}.out", w[f"{p}.out.weight"], w[f"{p}.out.bias"]))


def _positions(g: GraphBuilder, table: str, start: str, length_of: str, axis: int) -> str:
    """Rows start .. start + length of the positional table, where length = the size of `length_of` along `axis`."""
    length = g.op("Shape", length_of, start=axis, end=axis + 1)
    return g.op("Slice", table, start, g.op("Add", start, length), g.const([0]))


def _dims_value_info(name: str, elem: int, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


# -- the two graphs ----------------------------------------------------------------------------


def encoder_graph(w: Weights, dims: WhisperDims, states_layers: Sequence[int] = ()) -> onnx.ModelProto:
    """mel → every decoder layer's cross-attention keys and values.

    `states_layers` (1-based block numbers) adds each block's hidden states as an output
    `states_layer{k}` [batch, audio_ctx, n_state]: what an emotion head reads (see
    subtone.service.emotion.pooling). The default graph has none.
    """
    states: list[str] = []
    g = GraphBuilder()
    x = g.op("Conv", "mel", g.weight("conv1.weight", w["conv1.weight"]), g.weight("conv1.bias", w["conv1.bias"]),
             kernel_shape=[3], pads=[1, 1])
    x = gelu(g, x)
    x = g.op("Conv", x, g.weight("conv2.weight", w["conv2.weight"]), g.weight("conv2.bias", w["conv2.bias"]),
             kernel_shape=[3], pads=[1, 1], strides=[2])
    x = g.op("Transpose", gelu(g, x), perm=[0, 2, 1])  # [B, S, D]
    # A trimmed window (F < 3000) uses the first F/2 positions.
    x = g.op("Add", x, _positions(g, g.weight("audio_positions", w["audio_positions"]), g.const([0]), x, axis=1))
    for i in range(dims.n_audio_layer):
        g.scope = f"encoder.{i}/"
        x = self_attention(g, x, w, f"encoder_blocks.{i}", dims)
        x = mlp(g, x, w, f"encoder_blocks.{i}")
        if i + 1 in states_layers:
            states.append(g.op("Identity", x, output=f"states_layer{i + 1}"))
    g.scope = "cross_kv/"
    audio = layer_norm(g, x, w, "encoder_ln")
    # Every decoder layer's cross keys, then every layer's values, in one MatMul: columns
    # [k_0 … k_{L-1}, v_0 … v_{L-1}], split straight into the graph outputs in that order.
    blocks = [f"decoder_blocks.{i}.cross" for i in range(dims.n_text_layer)]
    kv_w = np.concatenate([w[f"{b}.key.weight"] for b in blocks] + [w[f"{b}.value.weight"] for b in blocks])
    kv_b = np.concatenate([np.zeros(dims.n_state * dims.n_text_layer, np.float32)] + [w[f"{b}.value.bias"] for b in blocks])
    names = cache_names(dims.n_text_layer)["cross"]
    kv = linear(g, audio, "cross_kv", kv_w, kv_b)
    split_heads(g, kv, dims, len(names), outputs=names)
    H, Dh = dims.n_head, dims.head_dim
    return g.model(
        "whisper_encoder",
        [_dims_value_info("mel", TensorProto.FLOAT, ["batch", dims.n_mels, "frames"])],
        [_dims_value_info(n, TensorProto.FLOAT, ["batch", H, "audio_ctx", Dh]) for n in names]
        + [_dims_value_info(n, TensorProto.FLOAT, ["batch", "audio_ctx", dims.n_state]) for n in states],
    )


def _causal_mask(g: GraphBuilder, tokens: str, past: str) -> str:
    """[N, P+N]: -inf where a new token would see a later one, else 0."""
    n = g.op("Shape", tokens, start=1, end=2)
    shape = g.op("Concat", n, g.op("Add", past, n), axis=0)
    neg_inf = g.op("ConstantOfShape", shape, value=numpy_helper.from_array(np.array([-np.inf], np.float32)))
    # Trilu keeps column - row ≥ past + 1 (the future) and zeroes the rest.
    first_future = g.op("Squeeze", g.op("Add", past, g.const([1])), g.const([0]))
    return g.op("Trilu", neg_inf, first_future, upper=1)


def _logits(g: GraphBuilder, x: str, w: Weights, dims: WhisperDims, tied: bool) -> str:
    """Output layer = the token embedding transposed (Whisper ties them).

    `tied`: Gemm(x, E, transB=1) reads the embedding the Gather uses, so it is stored once.
    Untied: a MatMul with its own Eᵀ copy, which ONNX Runtime's dynamic quantizer can make int8
    (it has no integer Gemm).
    """
    if not tied:
        return g.op("MatMul", x, g.weight("output_projection.weight", w["token_embedding.weight"].T), output="logits")
    flat = g.op("Reshape", x, g.const([-1, dims.n_state]))
    logits = g.op("Gemm", flat, "token_embedding.weight", transB=1)
    shape = g.op("Concat", g.op("Shape", "tokens"), g.const([dims.n_vocab]), axis=0)
    return g.op("Reshape", logits, shape, output="logits")


def decoder_graph(w: Weights, dims: WhisperDims, tied: bool = True) -> onnx.ModelProto:
    """One decoding step: new tokens + self-attention cache + cross keys/values → logits + grown cache."""
    g = GraphBuilder()
    L, H, Dh = dims.n_text_layer, dims.n_head, dims.head_dim
    names = cache_names(L)
    past = g.op("Shape", "self_k_0", start=2, end=3)
    embedding = g.weight("token_embedding.weight", w["token_embedding.weight"])
    x = g.op("Gather", embedding, "tokens")
    x = g.op("Add", x, _positions(g, g.weight("text_positions", w["text_positions"]), past, "tokens", axis=1))
    mask = _causal_mask(g, "tokens", past)
    for i in range(L):
        g.scope = f"decoder.{i}/"
        prefix = f"decoder_blocks.{i}"
        cache = (f"self_k_{i}", f"self_v_{i}", f"self_k_{i}_out", f"self_v_{i}_out")
        x = self_attention(g, x, w, prefix, dims, cache, mask)
        x = cross_attention(g, x, w, prefix, dims, f"cross_k_{i}", f"cross_v_{i}")
        x = mlp(g, x, w, prefix)
    g.scope = "logits/"
    _logits(g, layer_norm(g, x, w, "decoder_ln"), w, dims, tied)
    f = TensorProto.FLOAT
    inputs = [_dims_value_info("tokens", TensorProto.INT64, ["batch", "new_tokens"])]
    inputs += [_dims_value_info(n, f, ["batch", H, "past", Dh]) for n in names["self"]]
    inputs += [_dims_value_info(n, f, ["batch", H, "audio_ctx", Dh]) for n in names["cross"]]
    outputs = [_dims_value_info("logits", f, ["batch", "new_tokens", dims.n_vocab])]
    outputs += [_dims_value_info(n, f, ["batch", H, "total", Dh]) for n in names["self_out"]]
    return g.model("whisper_decoder_step", inputs, outputs)
