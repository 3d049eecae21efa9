"""Tiny TFLite models built in code: a FULLY_CONNECTED (int8 or float) and an int8 ADD, one operator each.

Benchmarks and tests use them where the model's content does not matter but its interface, size or arena does;
TFLite-Micro runs them in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    kind: int
    data: bytes | None = None                    # constant contents; None for activations
    quant: tuple[float, int] | None = None       # (scale, zero point), per tensor


def _single_op_model(op: int, version: int, tensors: list[_Tensor], op_inputs: list[int], options_type: int,
                     options: object) -> bytes:
    """A one-subgraph model whose only operator reads `op_inputs` and writes the last tensor."""
    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = op
    opcode.version = version
    model.operatorCodes = [opcode]
    model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
    subgraph = schema.SubGraphT()
    subgraph.tensors = []
    for spec in tensors:
        buffer = schema.BufferT()
        if spec.data is not None:
            buffer.data = np.frombuffer(spec.data, dtype=np.uint8)
        model.buffers.append(buffer)
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = spec.name.encode(), spec.shape, spec.kind, len(model.buffers) - 1
        if spec.quant is not None:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale, tensor.quantization.zeroPoint = [spec.quant[0]], [spec.quant[1]]
        subgraph.tensors.append(tensor)
    output = len(tensors) - 1
    subgraph.inputs, subgraph.outputs = [0], [output]
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, op_inputs, [output]
    operator.builtinOptionsType, operator.builtinOptions = options_type, options
    subgraph.operators = [operator]
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _fully_connected(tensors: list[_Tensor], version: int) -> bytes:
    return _single_op_model(schema.BuiltinOperator.FULLY_CONNECTED, version, tensors, [0, 1, 2],
                            schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT())


def int8_fc_model(features: int = 4, units: int = 2, seed: int = 0) -> bytes:
    """An int8 FULLY_CONNECTED .tflite (x [1, features] -> y [1, units]) that TFLite-Micro runs; seed varies weights."""
    weights = np.random.default_rng(seed).integers(-127, 128, size=(units, features), dtype=np.int8)
    t = schema.TensorType
    return _fully_connected([
        _Tensor("x", [1, features], t.INT8, quant=(0.05, 0)),
        _Tensor("w", [units, features], t.INT8, weights.tobytes(), (0.01, 0)),
        _Tensor("b", [units], t.INT32, np.zeros(units, dtype=np.int32).tobytes(), (0.0005, 0)),
        _Tensor("y", [1, units], t.INT8, quant=(0.1, -5)),
    ], version=4)


def float_fc_model(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """A float32 FULLY_CONNECTED .tflite: x [1, K] -> y [1, units], y = x @ weights + bias (weights [K, units])."""
    k, units = weights.shape
    t = schema.TensorType
    return _fully_connected([
        _Tensor("x", [1, k], t.FLOAT32),
        _Tensor("w", [units, k], t.FLOAT32, np.ascontiguousarray(weights.T, dtype=np.float32).tobytes()),  # [units, K]
        _Tensor("b", [units], t.FLOAT32, np.asarray(bias, dtype=np.float32).tobytes()),
        _Tensor("y", [1, units], t.FLOAT32),
    ], version=1)


def int8_add_model(elements: int) -> bytes:
    """An int8 ADD of an input with itself over `elements` values: a tiny file that needs a large TFLM arena."""
    t = schema.TensorType
    return _single_op_model(schema.BuiltinOperator.ADD, 2, [
        _Tensor("x", [1, elements], t.INT8, quant=(0.05, 0)),
        _Tensor("y", [1, elements], t.INT8, quant=(0.1, 0)),
    ], [0, 0], schema.BuiltinOptions.AddOptions, schema.AddOptionsT())
