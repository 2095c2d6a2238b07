"""The emotion head as ONNX (written from numpy with `onnx.helper`: no torch needed to export it).

features [N, F] (already standardised) → probs [N, 6] (temperature-scaled softmax, in EMOTIONS
order) and strong [N] (P(the emotion is strongly expressed)). The temperature is folded into
the last layer's weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from subtone.export.emotion.head_train import HeadWeights

OPSET = 17


def head_graph(w: HeadWeights, temperature: float):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, value: np.ndarray):
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    # A float16 first layer (most of the weights) is stored as float16 and widened in the graph:
    # half the file, and the same numbers as the numpy forward pass, which widens it too.
    half_w1 = w.w1.dtype == np.float16
    inits = [
        numpy_helper.from_array(w.w1, "w1_half") if half_w1 else init("w1", w.w1), init("b1", w.b1), init("w2", w.w2 / temperature), init("b2", w.b2 / temperature),
        init("w3", w.w3), init("b3", w.b3), init("sqrt_half", np.float32(np.sqrt(0.5))),
        init("one", np.float32(1.0)), init("half", np.float32(0.5)),
    ]
    nodes = [helper.make_node("Cast", ["w1_half"], ["w1"], to=TensorProto.FLOAT)] if half_w1 else []
    nodes += [
        helper.make_node("MatMul", ["features", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h"]),
        # GELU, exact (erf) form, as torch's nn.GELU trains it; opset 17 has no Gelu op.
        helper.make_node("Mul", ["h", "sqrt_half"], ["h_s"]),
        helper.make_node("Erf", ["h_s"], ["h_erf"]),
        helper.make_node("Add", ["h_erf", "one"], ["h_1"]),
        helper.make_node("Mul", ["h", "h_1"], ["h_g"]),
        helper.make_node("Mul", ["h_g", "half"], ["g"]),
        helper.make_node("MatMul", ["g", "w2"], ["l0"]),
        helper.make_node("Add", ["l0", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["g", "w3"], ["i0"]),
        helper.make_node("Add", ["i0", "b3"], ["i1"]),
        helper.make_node("Sigmoid", ["i1"], ["i2"]),
        helper.make_node("Squeeze", ["i2", "last_axis"], ["strong"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "last_axis"))
    width = w.w1.shape[0]
    graph = helper.make_graph(
        nodes, "emotion_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", w.w2.shape[1]]),
         helper.make_tensor_value_info("strong", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="subtone")
    model.ir_version = 8  # ONNX Runtime 1.17 (our floor) reads IR 8
    onnx.checker.check_model(model)
    return model


def save_head(w: HeadWeights, temperature: float, path: Path) -> Path:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(head_graph(w, temperature), str(path))
    return path
