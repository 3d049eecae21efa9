"""Parts of an activation picked by constant positions: Gather (a channel, a time step) as GATHER, Slice as
STRIDED_SLICE, both on the tensor's own layout.

Positions made at run time (an embedding lookup fed by a model input) are not lowered.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import identity
from wedge.quantize.tflite.lowering import Lowering, where

# TFLite-Micro's STRIDED_SLICE takes up to 4-D tensors.
MAX_SLICE_RANK: Final = 4


def lower_gather(ctx: Lowering, node: Node) -> None:
    data, indices_name, out = node.inputs[0], node.inputs[1], node.outputs[0]
    if ctx.tensor(data).constant:
        raise ExportError(f"{where(node)} looks up a constant table with indices computed at run time (an "
                          "embedding); TFLite export needs the indices constant")
    indices_tensor = ctx.tensor(indices_name)
    if not indices_tensor.constant:
        raise ExportError(f"{where(node)}: its indices are computed at run time; TFLite export needs them constant")
    shape = ctx.tensor(data).shape
    rank = len(shape)
    axis = int(node.attr("axis", 0)) % rank
    assert indices_tensor.data is not None
    indices = np.asarray(indices_tensor.data, np.int64)
    indices = np.where(indices < 0, indices + shape[axis], indices).astype(np.int32)
    layout = ctx.layout(data)
    if layout.order is not None or indices.ndim != 1:
        layout = identity(rank)
    out_layout = layout if indices.ndim == 1 else identity(len(ctx.tensor(out).shape))
    index = ctx.constant(f"{out}/indices", indices, np.int32)
    ctx.emit_to("GATHER", [ctx.activation(data, layout), index], out, out_layout,
                schema.GatherOptionsT(axis=layout.axis(axis), batchDims=0))


def _slice_bounds(ctx: Lowering, node: Node, rank: int, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(begin, end, step) per ONNX axis, clamped as ONNX Slice clamps them (positive steps)."""
    def values(position: int, default: list[int]) -> list[int]:
        name = node.inputs[position] if len(node.inputs) > position else ""
        if not name:
            return default
        tensor = ctx.tensor(name)
        if not tensor.constant:
            raise ExportError(f"{where(node)}: its slice bounds are computed at run time; export needs constants")
        assert tensor.data is not None
        return [int(v) for v in np.asarray(tensor.data).reshape(-1)]

    starts, ends = values(1, []), values(2, [])
    axes = [a % rank for a in values(3, list(range(len(starts))))]
    steps = values(4, [1] * len(starts))
    bounds = [(0, dim, 1) for dim in shape]
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        if step <= 0:
            raise ExportError(f"{where(node)} slices backwards (step {step}); TFLite export supports positive steps")
        dim = shape[axis]
        begin = min(max(start + dim if start < 0 else start, 0), dim)
        stop = min(max(end + dim if end < 0 else end, 0), dim)
        bounds[axis] = (begin, max(stop, begin), step)
    return bounds


def lower_slice(ctx: Lowering, node: Node) -> None:
    """Slice by constant bounds as STRIDED_SLICE on the tensor's own layout (no transpose)."""
    data, out = node.inputs[0], node.outputs[0]
    shape = ctx.tensor(data).shape
    rank = len(shape)
    bounds = _slice_bounds(ctx, node, rank, shape)
    layout = ctx.layout(data)
    if layout.order is not None:
        layout = identity(rank)
    in_shape = layout.tflite_shape(shape)
    cuts = [(0, 1, 1) if axis is None else bounds[axis] for axis in layout.tflite_axes()]
    source = ctx.activation(data, layout)
    # TFLM slices at most 4-D; unit axes that are not cut hold no bytes and can be dropped around the slice.
    keep = [i for i, dim in enumerate(in_shape) if dim != 1 or cuts[i] != (0, 1, 1)]
    if len(in_shape) > MAX_SLICE_RANK and len(keep) <= MAX_SLICE_RANK:
        params = ctx.writer.tensor(source).quant
        squeezed = ctx.writer.add_tensor(f"{data}/squeezed", [in_shape[i] for i in keep], np.int8, params)
        ctx.reshape(source, squeezed, [in_shape[i] for i in keep])
        cut = [cuts[i] for i in keep]
        sliced_shape = [len(range(*c)) for c in cut]
        sliced = ctx.writer.add_tensor(f"{out}/sliced", sliced_shape, np.int8, params)
        ctx.emit("STRIDED_SLICE", [squeezed, *_slice_vectors(ctx, cut)], [sliced], schema.StridedSliceOptionsT())
        result = ctx.writer.add_tensor(out, layout.tflite_shape(ctx.tensor(out).shape), np.int8, params)
        ctx.reshape(sliced, result, layout.tflite_shape(ctx.tensor(out).shape))
        ctx.alias(out, ctx.requantized(result, ctx.params(out), out), layout)
        return
    ctx.emit_to("STRIDED_SLICE", [source, *_slice_vectors(ctx, cuts)], out, layout, schema.StridedSliceOptionsT())


def _slice_vectors(ctx: Lowering, cuts: list[tuple[int, int, int]]) -> list[int]:
    return [ctx.int32_vector(label, [c[i] for c in cuts]) for i, label in enumerate(("begin", "end", "strides"))]
