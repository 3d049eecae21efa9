"""Models for engine tests: tiny ONNX and TFLite models built here with known weights, and the shared ones.

The tiny models make every engine testable without ../shared/models; shared-model tests skip without it.
Imported by name from the tests (a unique module name, unlike conftest, which every test folder has).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from wedge.samples.tiny_tflite import float_fc_model

# y = x @ W + b for the tiny models: 4 features in, 2 out.
WEIGHTS = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0], [-1.0, 1.0]], dtype=np.float32)
BIAS = np.array([0.5, -0.25], dtype=np.float32)


def expected(x: np.ndarray) -> np.ndarray:
    return x @ WEIGHTS + BIAS



def onnx_linear_model(batch: int | str) -> bytes:
    """ONNX y = x @ W + b with input x [batch, 4]; batch is a fixed size or a symbolic name."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [x],
        [y],
        [
            helper.make_tensor("w", TensorProto.FLOAT, WEIGHTS.shape, WEIGHTS.ravel()),
            helper.make_tensor("b", TensorProto.FLOAT, BIAS.shape, BIAS),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tflite_linear_model() -> bytes:
    """A float32 FULLY_CONNECTED .tflite: x [1, 4] -> y [1, 2], y = x @ W + b."""
    return float_fc_model(WEIGHTS, BIAS)
