"""Lowers a whole QdqGraph to a .tflite: model inputs, every node in order, model outputs.

Inputs read by convolutions or pools are laid out NHWC; int8 I/O by default, float I/O adds (DE)QUANTIZE.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import QdqGraph
from wedge.quantize.tflite.layout import Layout, channel_last, identity, output_layout
from wedge.quantize.tflite.lowering import Lowering
from wedge.quantize.tflite.ops import CHANNEL_LAST_OPS
from wedge.quantize.tflite.registry import lower_node
from wedge.runtime.types import QuantParams

IoKind = Literal["int8", "float"]
IO_KINDS: Final = ("int8", "float")


@dataclass(frozen=True)
class IoBinding:
    """A model input or output on both sides: ONNX name and shape, TFLite name, shape, layout and grid."""

    onnx_name: str
    tflite_name: str
    onnx_shape: tuple[int, ...]
    tflite_shape: tuple[int, ...]
    layout: Layout
    params: QuantParams
    dtype: np.dtype

    def to_tflite(self, onnx_array: np.ndarray) -> np.ndarray:
        """ONNX-layout float samples [N, ...] as this TFLite tensor's feed (quantized when it is int8)."""
        laid = self.layout.to_tflite(np.asarray(onnx_array))
        laid = laid.reshape((laid.shape[0], *self.tflite_shape[1:]))
        if self.dtype == np.int8:
            return self.params.quantize(laid, np.int8)
        return laid.astype(self.dtype)

    def to_onnx(self, tflite_array: np.ndarray) -> np.ndarray:
        """TFLite outputs [N, ...] back in ONNX layout, as they come (int8 codes or floats)."""
        return self.layout.to_onnx(np.asarray(tflite_array), self.onnx_shape)

    def to_dict(self) -> dict[str, Any]:
        return {"onnx_name": self.onnx_name, "tflite_name": self.tflite_name, "onnx_shape": list(self.onnx_shape),
                "tflite_shape": list(self.tflite_shape), "dtype": str(self.dtype),
                "scale": self.params.scales[0], "zero_point": self.params.zero_points[0],
                "layout": layout_name(self.layout)}


def layout_name(layout: Layout) -> str:
    if layout.is_identity:
        return "as ONNX"
    if layout.perm == (0, 2, 3, 1) and not layout.inserted:
        return "NHWC"
    if layout.perm == (0, 2, 1):
        return "N1WC" if layout.inserted else "NWC"
    return f"perm {list(layout.perm)}"


@dataclass(frozen=True)
class LoweredModel:
    """The .tflite bytes and what a caller needs to feed it and read it."""

    data: bytes
    op_histogram: dict[str, int]
    inputs: tuple[IoBinding, ...]
    outputs: tuple[IoBinding, ...]
    requantize_ops: int
    transpose_ops: int


def _input_layout(graph: QdqGraph, tensor: str) -> Layout:
    rank = len(graph.tensors[tensor].shape)
    readers = graph.consumers(tensor)
    if rank in (3, 4) and any(r.op_type in CHANNEL_LAST_OPS for r in readers):
        return channel_last(rank, f"input {tensor!r}")
    return identity(rank)


def lower_graph(graph: QdqGraph, io: IoKind = "int8", description: str = "wedge int8 export",
                metadata: Mapping[str, bytes] | None = None) -> LoweredModel:
    """The TFLite model of `graph`; int8 or float at its inputs and outputs; `metadata` entries (name -> bytes,
    e.g. the labels) go into the model's metadata."""
    if io not in IO_KINDS:
        raise ExportError(f"unknown I/O type {io!r}: expected int8 or float")
    ctx = Lowering(graph)
    writer = ctx.writer
    inputs: list[IoBinding] = []
    for binding in graph.inputs:
        layout = _input_layout(graph, binding.tensor)
        index = ctx.define(binding.tensor, layout)
        tensor = graph.tensors[binding.tensor]
        shape = layout.tflite_shape(tensor.shape)
        params = ctx.params(binding.tensor)
        if io == "float":
            float_index = writer.add_tensor(binding.name, shape, np.float32)
            ctx.emit("QUANTIZE", [float_index], [index], schema.QuantizeOptionsT())
            writer.rename(index, f"{binding.name}_int8")
            writer.inputs.append(float_index)
        else:
            writer.rename(index, binding.name)
            writer.inputs.append(index)
        inputs.append(IoBinding(binding.name, binding.name, tensor.shape, shape, layout, params,
                                np.dtype(np.float32 if io == "float" else np.int8)))
    for node in graph.nodes:
        if node.name not in ctx.skipped:
            lower_node(ctx, node)
    outputs: list[IoBinding] = []
    for binding in graph.outputs:
        layout = output_layout(ctx.layout(binding.tensor))
        index = ctx.activation(binding.tensor, layout)
        tensor = graph.tensors[binding.tensor]
        shape = layout.tflite_shape(tensor.shape)
        params = writer.tensor(index).quant
        assert params is not None
        if io == "float":
            float_index = writer.add_tensor(binding.name, shape, np.float32)
            ctx.emit("DEQUANTIZE", [index], [float_index])
            writer.outputs.append(float_index)
        else:
            writer.rename(index, binding.name)
            writer.outputs.append(index)
        outputs.append(IoBinding(binding.name, binding.name, tensor.shape, shape, layout, params,
                                 np.dtype(np.float32 if io == "float" else np.int8)))
    return LoweredModel(data=writer.to_bytes(description, metadata or {}), op_histogram=dict(Counter(writer.op_names)),
                        inputs=tuple(inputs), outputs=tuple(outputs), requantize_ops=ctx.requantizations,
                        transpose_ops=ctx.transposes)
