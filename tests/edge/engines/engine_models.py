"""Models for engine tests: tiny ONNX and TFLite models built here with known weights, and the shared ones.

The tiny models make every engine testable without ../shared/models; shared-model tests skip without it.
Imported by name from the tests (a unique module name, unlike conftest, which every test folder has).
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as schema
from onnx import TensorProto, helper

SHARED_MODELS = Path(__file__).resolve().parents[3].parent / "shared" / "models"

# y = x @ W + b for the tiny models: 4 features in, 2 out.
WEIGHTS = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0], [-1.0, 1.0]], dtype=np.float32)
BIAS = np.array([0.5, -0.25], dtype=np.float32)


def expected(x: np.ndarray) -> np.ndarray:
    return x @ WEIGHTS + BIAS


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} is absent ({SHARED_MODELS})")
    return path


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
    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    opcode.version = 1
    model.operatorCodes = [opcode]
    buffers = [schema.BufferT() for _ in range(5)]
    buffers[2].data = np.frombuffer(WEIGHTS.T.copy().tobytes(), dtype=np.uint8)  # TFLite stores [units, K]
    buffers[3].data = np.frombuffer(BIAS.tobytes(), dtype=np.uint8)
    model.buffers = buffers

    def tensor(name: str, shape: list[int], buffer: int) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), shape, schema.TensorType.FLOAT32, buffer
        return t

    subgraph = schema.SubGraphT()
    subgraph.tensors = [tensor("x", [1, 4], 1), tensor("w", [2, 4], 2), tensor("b", [2], 3), tensor("y", [1, 2], 4)]
    subgraph.inputs, subgraph.outputs = [0], [3]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    subgraph.operators = [op]
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())

