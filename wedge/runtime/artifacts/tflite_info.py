"""Reads a .tflite file into ModelInfo: interface, quantization, op histogram, params, MACs, TFLM support.

Parses the flatbuffer only (no interpreter), so it works on models no runtime here can load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.runtime.artifacts.macs import tflite_op_macs
from wedge.runtime.artifacts.model_info import ModelInfo, histogram
from wedge.runtime.artifacts.tflite_flatbuffer import (
    buffer_bytes,
    int_list,
    numpy_dtype,
    op_name,
    read_tflite,
    tensor_name,
    tensor_shape,
    type_name,
)
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported
from wedge.runtime.types import QuantParams, TensorSpec

# Integer constants are weights only where an op reads them as such; elsewhere they are shapes,
# axes or paddings. These ops take their bias (int32 in int8 models) at this input position.
_BIAS_INPUT: Final[dict[str, int]] = {
    "CONV_2D": 2,
    "DEPTHWISE_CONV_2D": 2,
    "FULLY_CONNECTED": 2,
    "TRANSPOSE_CONV": 3,
}

_WEIGHT_TYPES: Final = frozenset(
    {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16", "INT8", "UINT8", "INT16", "INT4", "UINT4", "INT2"}
)
_QUANTIZED_TYPES: Final = frozenset({"INT8", "UINT8", "INT16", "INT4", "UINT4", "INT2"})


def _quant(tensor: schema.TensorT) -> QuantParams | None:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scales = tuple(float(s) for s in np.asarray(q.scale).ravel())
    zero_points = tuple(int(z) for z in np.asarray(q.zeroPoint).ravel()) if q.zeroPoint is not None else ()
    if len(zero_points) != len(scales):
        zero_points = (zero_points[0] if zero_points else 0,) * len(scales)
    return QuantParams(scales=scales, zero_points=zero_points, axis=int(q.quantizedDimension))


def _spec(subgraph: schema.SubGraphT, index: int) -> TensorSpec:
    tensor = subgraph.tensors[index]
    return TensorSpec(
        name=tensor_name(tensor),
        shape=tensor_shape(tensor),
        dtype=numpy_dtype(tensor.type),
        quant=_quant(tensor),
    )


def _param_buffers(model: schema.ModelT, names: list[list[str]]) -> set[int]:
    """Buffer indexes of the constant tensors that are weights or biases (a shared buffer counts once)."""
    buffers: set[int] = set()
    for subgraph, op_names in zip(model.subgraphs, names, strict=True):
        bias_tensors = {
            int_list(op.inputs)[_BIAS_INPUT[name]]
            for op, name in zip(subgraph.operators or (), op_names, strict=True)
            if name in _BIAS_INPUT and len(int_list(op.inputs)) > _BIAS_INPUT[name]
        }
        for index, tensor in enumerate(subgraph.tensors or ()):
            if buffer_bytes(model, tensor.buffer) == 0:
                continue
            if type_name(tensor.type) in _WEIGHT_TYPES or index in bias_tensors:
                buffers.add(int(tensor.buffer))
    return buffers


def _param_count(model: schema.ModelT, buffers: set[int]) -> int:
    counted: set[int] = set()
    count = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors or ():
            if tensor.buffer in buffers and tensor.buffer not in counted:
                counted.add(int(tensor.buffer))
                count += int(np.prod(tensor_shape(tensor), dtype=np.int64))
    return count


def tflite_info(path: Path, data: bytes) -> ModelInfo:
    """ModelInfo of the .tflite model whose bytes are `data`, read from `path`."""
    model = read_tflite(data, path.name)
    op_names = [
        [op_name(model, int(op.opcodeIndex)) for op in (subgraph.operators or ())] for subgraph in model.subgraphs
    ]
    main = model.subgraphs[0]
    buffers = _param_buffers(model, op_names)
    macs = sum(
        tflite_op_macs(name, op, subgraph)
        for subgraph, names in zip(model.subgraphs, op_names, strict=True)
        for op, name in zip(subgraph.operators or (), names, strict=True)
    )
    quantized = any(
        type_name(tensor.type) in _QUANTIZED_TYPES and _quant(tensor) is not None
        for subgraph in model.subgraphs
        for tensor in subgraph.tensors or ()
    )
    all_ops = [name for names in op_names for name in names]
    notes: list[str] = []
    unsupported = tflm_unsupported(all_ops)
    if unsupported:
        notes.append(f"TFLite-Micro has no kernel for: {', '.join(unsupported)}")
    if len(model.subgraphs) > 1:
        notes.append(f"{len(model.subgraphs)} subgraphs: control-flow bodies are counted once in MACs")
    return ModelInfo(
        path=str(path),
        format="tflite",
        size_bytes=len(data),
        inputs=tuple(_spec(main, i) for i in int_list(main.inputs)),
        outputs=tuple(_spec(main, i) for i in int_list(main.outputs)),
        op_histogram=histogram(all_ops),
        param_count=_param_count(model, buffers),
        macs=int(macs),
        weight_bytes=sum(buffer_bytes(model, b) for b in buffers),
        opset=None,
        quantized=quantized,
        notes=tuple(notes),
    )
