"""Gather of an activation by constant indices (a channel pick, a time step) as TFLite GATHER.

Indices made at run time (an embedding lookup fed by a model input) are not lowered.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import identity
from wedge.quantize.tflite.lowering import Lowering, where


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
