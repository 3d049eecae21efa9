"""Div, which exporters write by a scalar (HardSwish's / 6), by a per-channel constant, or by an activation
(LayerNorm's / sqrt(var + eps)): a table, a MUL by the reciprocal, or a table of code pairs.
"""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import identity
from wedge.quantize.tflite.lowering import Lowering
from wedge.quantize.tflite.ops import constant_operand, fuse_activation, lower_div_builtin, main_layout
from wedge.quantize.tflite.table import lower_pair_table, lower_table, table_input


def lower_div(ctx: Lowering, node: Node) -> None:
    """A constant divisor: MUL by its reciprocal (one rounding, as ONNX's float division has; no int32 index in
    the arena as a table would need). A scalar constant over an activation: an exact table. Two activations: a
    table of code pairs (TFLite's int8 DIV saturates for numerators near zero)."""
    divisor = ctx.tensor(node.inputs[1])
    if not divisor.constant and table_input(ctx, node) is not None:
        lower_table(ctx, node)
        return
    layout = main_layout(ctx, node)
    if layout.order is not None:
        layout = identity(layout.rank)
    if not divisor.constant:
        if ctx.tensor(node.inputs[0]).constant:
            lower_div_builtin(ctx, node)  # a constant numerator several values long: never near zero per element
            return
        lower_pair_table(ctx, node, layout)
        return
    x = ctx.activation(node.inputs[0], layout)
    reciprocal = constant_operand(ctx, f"{node.inputs[1]}/reciprocal", 1.0 / divisor.real(), layout)
    activation, out = fuse_activation(ctx, node.outputs[0])
    ctx.emit_to("MUL", [x, reciprocal], out, layout, schema.MulOptionsT(fusedActivationFunction=activation))
