"""The state of one lowering: which TFLite tensor holds each graph tensor, in which layout, and the helpers
the per-op functions share (layout conversion, requantization, constants, fixed output grids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node, QdqGraph, Tensor
from wedge.quantize.tflite.layout import Layout
from wedge.quantize.tflite.spec import required_output_params, same_params
from wedge.quantize.tflite.writer import TfliteWriter
from wedge.runtime.types import QuantParams

# Below this input/output scale ratio, TFLM's QUANTIZE rounds twice (see Lowering.emit_requantize).
REQUANTIZE_MIN_RATIO: Final = 0.5


def where(node: Node) -> str:
    return f"node {node.name!r} ({node.op_type})"


class Lowering:
    """Builds the TFLite subgraph for a QdqGraph, one ONNX node at a time."""

    def __init__(self, graph: QdqGraph) -> None:
        self.graph = graph
        self.writer = TfliteWriter()
        self._index: dict[str, int] = {}
        self._layouts: dict[str, Layout] = {}
        self._conversions: dict[tuple[str, Any], int] = {}
        self.skipped: set[str] = set()  # nodes already lowered into another op (a fused activation)
        self.requantizations = 0
        self.transposes = 0

    # --- graph tensors -------------------------------------------------------------------------

    def tensor(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def params(self, name: str) -> QuantParams:
        params = self.tensor(name).quant
        if params is None:
            raise ExportError(f"tensor {name!r} has no int8 parameters")
        return params

    def layout(self, name: str) -> Layout:
        return self._layouts[name]

    def is_float(self, name: str) -> bool:
        """Whether graph tensor `name` is a float32 activation (inside a float island)."""
        tensor = self.tensor(name)
        return not tensor.constant and tensor.quant is None and tensor.dtype == np.float32

    def define(self, name: str, layout: Layout, params: QuantParams | None = None) -> int:
        """A new TFLite tensor holding graph tensor `name` in `layout`: int8 on the graph's grid (or `params`),
        float32 for a float-island tensor."""
        tensor = self.tensor(name)
        if self.is_float(name) and params is None:
            index = self.writer.add_tensor(name, layout.tflite_shape(tensor.shape), np.float32)
            self._index[name] = index
            self._layouts[name] = layout
            return index
        index = self.writer.add_tensor(name, layout.tflite_shape(tensor.shape), np.int8,
                                       params if params is not None else tensor.quant)
        self._index[name] = index
        self._layouts[name] = layout
        return index

    def alias(self, name: str, index: int, layout: Layout) -> None:
        """Graph tensor `name` is held by an existing TFLite tensor (a layout-only op emits nothing)."""
        self._index[name] = index
        self._layouts[name] = layout

    # --- inputs of an op ------------------------------------------------------------------------

    def activation(self, name: str, want: Layout | None = None) -> int:
        """The TFLite tensor holding activation `name`, converted to layout `want` when given."""
        if name not in self._index:
            raise ExportError(f"tensor {name!r} is used before any op makes it")
        layout = self._layouts[name]
        if want is None or layout.same_as(want):
            return self._index[name]
        key = (name, want.key())
        if key not in self._conversions:
            self._conversions[key] = self._convert(name, layout, want)
        return self._conversions[key]

    def _convert(self, name: str, have: Layout, want: Layout) -> int:
        """RESHAPE when the bytes are already in order; else drop inserted unit axes, TRANSPOSE, add them."""
        if have.order is not None or want.order is not None:
            raise ExportError(f"tensor {name!r} is flattened from a channel-last tensor and read by an op other "
                              "than a fully-connected layer; this graph shape is not one wedge can export")
        shape = self.tensor(name).shape
        source = self._index[name]
        params = self.writer.tensor(source).quant
        dtype = self.writer.tensor(source).dtype
        if _same_nonunit_order(have, want, shape):
            return self._reshaped(source, want.tflite_shape(shape), f"{name}/reshaped", params, dtype)
        plain_have, plain_want = Layout(have.perm), Layout(want.perm)
        if have.inserted:
            source = self._reshaped(source, plain_have.tflite_shape(shape), f"{name}/squeezed", params, dtype)
        moved = self.writer.add_tensor(f"{name}/transposed", plain_want.tflite_shape(shape), dtype, params)
        self.transpose(source, moved, [have.perm.index(axis) for axis in want.perm])
        if want.inserted:
            return self._reshaped(moved, want.tflite_shape(shape), f"{name}/reshaped", params, dtype)
        return moved

    def _reshaped(self, source: int, shape: Sequence[int], label: str, params: QuantParams | None,
                  dtype: Any = np.int8) -> int:
        out = self.writer.add_tensor(label, shape, dtype, params)
        self.reshape(source, out, shape)
        return out

    def float_activation(self, name: str, want: Layout | None = None) -> int:
        """Activation `name` as float32 in layout `want`: DEQUANTIZE of an int8 tensor (once per layout), or the
        float tensor a float-island op made."""
        source = self.activation(name, want)
        if self.writer.tensor(source).dtype == np.float32:
            return source
        key = (name, ("float", None if want is None else want.key()))
        if key not in self._conversions:
            record = self.writer.tensor(source)
            out = self.writer.add_tensor(f"{name}/float", record.shape, np.float32)
            self.emit("DEQUANTIZE", [source], [out])
            self._conversions[key] = out
        return self._conversions[key]

    def finish_float(self, name: str, source: int, layout: Layout) -> None:
        """Graph tensor `name` is the float32 result `source`: QUANTIZE it when the graph holds it in int8."""
        if self.is_float(name):
            self.alias(name, source, layout)
            return
        out = self.define(name, layout)
        self.emit("QUANTIZE", [source], [out], schema.QuantizeOptionsT())

    def constant(self, name: str, values: np.ndarray, dtype: Any, params: QuantParams | None = None,
                 shape: Sequence[int] | None = None) -> int:
        array = np.asarray(values)
        return self.writer.add_tensor(name, tuple(array.shape) if shape is None else shape, dtype, params,
                                      array.astype(dtype))

    def int32_vector(self, name: str, values: Sequence[int]) -> int:
        return self.constant(name, np.asarray(values, np.int32), np.int32)

    # --- emitting -------------------------------------------------------------------------------

    def emit(self, op: str, inputs: Sequence[int], outputs: Sequence[int], options: Any = None) -> None:
        self.writer.add_op(op, inputs, outputs, options)

    def emit_to(self, op: str, inputs: Sequence[int], name: str, layout: Layout, options: Any = None) -> int:
        """Emit `op` writing graph tensor `name`. Where the spec fixes the op's output grid (a kernel constant,
        or its input's) and ONNX chose another, the op writes a temporary on the spec's grid, requantized
        onto ONNX's."""
        if self.is_float(name):
            out = self.define(name, layout)
            self.emit(op, inputs, [out], options)
            return out
        required = required_output_params(op, self.writer.tensor(inputs[0]).quant)
        if required is None or same_params(required, self.params(name)):
            out = self.define(name, layout, required)
            self.emit(op, inputs, [out], options)
            return out
        shape = layout.tflite_shape(self.tensor(name).shape)
        temporary = self.writer.add_tensor(f"{name}/{op.lower()}", shape, np.int8, required)
        self.emit(op, inputs, [temporary], options)
        out = self.define(name, layout)
        self.emit_requantize(temporary, out)
        return out

    def requantized(self, index: int, params: QuantParams, label: str) -> int:
        """`index` on the grid `params`, through a requantizing op when it is on another one."""
        record = self.writer.tensor(index)
        if same_params(record.quant, params):
            return index
        out = self.writer.add_tensor(f"{label}/requantized", record.shape, np.int8, params)
        self.emit_requantize(index, out)
        return out

    def emit_requantize(self, source: int, out: int) -> None:
        """Rescale int8 `source` onto `out`'s grid.

        QUANTIZE (int8 -> int8) rescales with one fixed-point multiply that keeps only -log2(ratio) fraction
        bits before its final rounding: coarsening the grid more than 2x, it rounds twice and is a quantum
        off for up to a quarter of the values. ADD of a zero rescales through 2^20 headroom and rounds once,
        so it does those cases; QUANTIZE, the spec's op, does the rest.
        """
        have, want = self.writer.tensor(source).quant, self.writer.tensor(out).quant
        assert have is not None and want is not None
        self.requantizations += 1
        if have.scales[0] / want.scales[0] >= REQUANTIZE_MIN_RATIO:
            self.emit("QUANTIZE", [source], [out], schema.QuantizeOptionsT())
            return
        zero = self.writer.add_tensor("zero", (1,), np.int8, have, np.array([have.zero_points[0]], np.int8))
        self.emit("ADD", [source, zero], [out], schema.AddOptionsT())

    def reshape(self, source: int, out: int, shape: Sequence[int]) -> None:
        options = schema.ReshapeOptionsT()
        options.newShape = [int(d) for d in shape]
        self.emit("RESHAPE", [source, self.int32_vector("shape", shape)], [out], options)

    def transpose(self, source: int, out: int, perm: Sequence[int]) -> None:
        self.emit("TRANSPOSE", [source, self.int32_vector("perm", perm)], [out], schema.TransposeOptionsT())
        self.transposes += 1


def _same_nonunit_order(have: Layout, want: Layout, shape: Sequence[int]) -> bool:
    """Whether both layouts put the non-unit ONNX axes in the same order (same bytes, other shape)."""
    keep = [a for a in have.perm if shape[a] != 1]
    return keep == [a for a in want.perm if shape[a] != 1]
