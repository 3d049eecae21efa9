"""Float islands: a node kept float runs as float32 TFLite ops, fed by DEQUANTIZE and followed by QUANTIZE.

TFLite-Micro has float32 kernels for these ops; weights of a node kept float stay float32 constants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import (
    Layout,
    broadcast_constant,
    channel_last,
    conv_weights,
    depthwise_weights,
    identity,
    spatial,
)
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.ops import attr_ints, conv_padding, dense_input, main_layout
from wedge.quantize.tflite.ops import lower_softmax as lower_int8_softmax

FloatLower = Callable[[Lowering, Node], None]

# TFLite-Micro's int8 SOFTMAX aborts from 512 classes on (a fixed buffer); its float32 one takes any count.
TFLM_INT8_SOFTMAX_MAX_DEPTH: Final = 511

_UNARY: Final[dict[str, str]] = {
    "Sigmoid": "LOGISTIC", "Tanh": "TANH", "Relu": "RELU", "Exp": "EXP", "Sqrt": "SQRT", "Abs": "ABS",
    "Neg": "NEG", "Log": "LOG", "HardSwish": "HARD_SWISH", "Sin": "SIN", "Cos": "COS", "Floor": "FLOOR",
    "Ceil": "CEIL", "Round": "ROUND",
}  # fmt: skip
_BINARY: Final[dict[str, tuple[str, Callable[[], object] | None]]] = {
    "Add": ("ADD", schema.AddOptionsT), "Sub": ("SUB", schema.SubOptionsT), "Mul": ("MUL", schema.MulOptionsT),
    "Div": ("DIV", schema.DivOptionsT), "Max": ("MAXIMUM", None), "Min": ("MINIMUM", None),
}  # fmt: skip


def _float_operand(ctx: Lowering, name: str, layout: Layout) -> int:
    tensor = ctx.tensor(name)
    if not tensor.constant:
        return ctx.float_activation(name, layout)
    values = broadcast_constant(tensor.real().astype(np.float32), layout)
    return ctx.constant(name, values, np.float32)


def _unary(op: str) -> FloatLower:
    def lower(ctx: Lowering, node: Node) -> None:
        source = ctx.float_activation(node.inputs[0])
        out = ctx.writer.add_tensor(f"{node.outputs[0]}/float", ctx.writer.tensor(source).shape, np.float32)
        ctx.emit(op, [source], [out])
        ctx.finish_float(node.outputs[0], out, ctx.layout(node.inputs[0]))

    return lower


def _binary(op: str, options: Callable[[], object] | None) -> FloatLower:
    def lower(ctx: Lowering, node: Node) -> None:
        layout = main_layout(ctx, node)
        if layout.order is not None:
            layout = identity(layout.rank)
        inputs = [_float_operand(ctx, name, layout) for name in node.inputs[:2]]
        out = ctx.writer.add_tensor(f"{node.outputs[0]}/float", layout.tflite_shape(ctx.tensor(node.outputs[0]).shape),
                                    np.float32)
        ctx.emit(op, inputs, [out], None if options is None else options())
        ctx.finish_float(node.outputs[0], out, layout)

    return lower


def float_softmax(ctx: Lowering, node: Node, layout: Layout) -> None:
    """SOFTMAX in float32 on the last TFLite axis of `layout` (TFLite-Micro's int8 kernel takes at most 511
    classes; its float one any number)."""
    source = ctx.float_activation(node.inputs[0], layout)
    out = ctx.writer.add_tensor(f"{node.outputs[0]}/float", ctx.writer.tensor(source).shape, np.float32)
    ctx.emit("SOFTMAX", [source], [out], schema.SoftmaxOptionsT(beta=1.0))
    ctx.finish_float(node.outputs[0], out, layout)


def lower_softmax(ctx: Lowering, node: Node) -> None:
    """Int8 SOFTMAX, or a float island where TFLite-Micro's int8 kernel cannot take the class count."""
    depth = ctx.tensor(node.inputs[0]).shape[int(node.attr("axis", -1))]
    if depth > TFLM_INT8_SOFTMAX_MAX_DEPTH:
        _softmax(ctx, node)
        return
    lower_int8_softmax(ctx, node)


def _softmax(ctx: Lowering, node: Node) -> None:
    rank = len(ctx.tensor(node.inputs[0]).shape)
    axis = int(node.attr("axis", -1)) % rank
    layout = ctx.layout(node.inputs[0])
    if layout.order is not None or layout.axis(axis) != len(layout.tflite_shape(ctx.tensor(node.inputs[0]).shape)) - 1:
        if axis != rank - 1:
            raise ExportError(f"{where(node)} normalizes axis {axis}; TFLite SOFTMAX normalizes the last axis only")
        layout = identity(rank)
    float_softmax(ctx, node, layout)


def _conv(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    weights = ctx.tensor(node.inputs[1])
    if not weights.constant:
        raise ExportError(f"{where(node)}: its weights are computed at run time; export needs constant weights")
    data = weights.real().astype(np.float32)
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    n_spatial = rank - 2
    kernel = spatial(data.shape[2:], rank, 1)
    strides = spatial(attr_ints(node, "strides", [1] * n_spatial), rank, 1)
    dilations = spatial(attr_ints(node, "dilations", [1] * n_spatial), rank, 1)
    in_shape = ctx.tensor(x).shape
    padding, pads = conv_padding(node, spatial(in_shape[2:], rank, 1), kernel, strides, dilations, rank)
    source = ctx.float_activation(x, layout)
    if any(pads):
        top, left, bottom, right = pads
        record = ctx.writer.tensor(source)
        n, h, w, c = record.shape
        padded = ctx.writer.add_tensor(f"{x}/padded", (n, h + top + bottom, w + left + right, c), np.float32)
        paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
        ctx.emit("PAD", [source, ctx.constant("paddings", paddings, np.int32)], [padded], schema.PadOptionsT())
        source = padded
    channels_out = data.shape[0]
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias = ctx.tensor(bias_name).real().astype(np.float32) if bias_name else np.zeros(channels_out, np.float32)
    bias_index = ctx.constant(f"{bias_name or out}/bias", bias.reshape(-1), np.float32)
    group = int(node.attr("group", 1))
    result = ctx.writer.add_tensor(f"{out}/float", layout.tflite_shape(ctx.tensor(out).shape), np.float32)
    if group == 1:
        w_index = ctx.constant(node.inputs[1], conv_weights(data), np.float32)
        options = schema.Conv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                        dilationWFactor=dilations[1], dilationHFactor=dilations[0])
        ctx.emit("CONV_2D", [source, w_index, bias_index], [result], options)
    elif group == in_shape[1] and data.shape[1] == 1:
        w_index = ctx.constant(node.inputs[1], depthwise_weights(data), np.float32)
        options = schema.DepthwiseConv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                                 depthMultiplier=channels_out // in_shape[1],
                                                 dilationWFactor=dilations[1], dilationHFactor=dilations[0])
        ctx.emit("DEPTHWISE_CONV_2D", [source, w_index, bias_index], [result], options)
    else:
        raise ExportError(f"{where(node)} is a grouped convolution kept float; keep it int8 instead")
    ctx.finish_float(out, result, layout)


def _fully_connected(ctx: Lowering, node: Node) -> None:
    a, out = node.inputs[0], node.outputs[0]
    weights = ctx.tensor(node.inputs[1])
    if not weights.constant or weights.data is None or weights.data.ndim != 2:
        raise ExportError(f"{where(node)} kept float needs constant 2-D weights")
    trans_b = bool(node.attr("transB", 0)) if node.op_type == "Gemm" else False
    if node.op_type == "Gemm" and (int(node.attr("transA", 0)) or float(node.attr("alpha", 1.0)) != 1.0
                                   or float(node.attr("beta", 1.0)) != 1.0):
        raise ExportError(f"{where(node)} kept float uses transA/alpha/beta, which FULLY_CONNECTED lacks")
    real = weights.real().astype(np.float32)
    matrix, source = dense_input(ctx, a, real if trans_b else real.T, as_float=True)
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    units = matrix.shape[0]
    bias = (np.broadcast_to(ctx.tensor(bias_name).real().astype(np.float32), (units,)) if bias_name
            else np.zeros(units, np.float32))
    rank = len(ctx.tensor(out).shape)
    result = ctx.writer.add_tensor(f"{out}/float", ctx.tensor(out).shape, np.float32)
    ctx.emit("FULLY_CONNECTED", [source, ctx.constant(node.inputs[1], np.ascontiguousarray(matrix), np.float32),
                                 ctx.constant(f"{bias_name or out}/bias", np.ascontiguousarray(bias), np.float32)],
             [result], schema.FullyConnectedOptionsT(keepNumDims=rank > 2))
    ctx.finish_float(out, result, identity(rank))


FLOAT_LOWERINGS: Final[dict[str, FloatLower]] = {
    **{onnx_op: _unary(op) for onnx_op, op in _UNARY.items()},
    **{onnx_op: _binary(op, options) for onnx_op, (op, options) in _BINARY.items()},
    "Softmax": _softmax,
    "Conv": _conv,
    "Gemm": _fully_connected,
    "MatMul": _fully_connected,
}


def lower_float_node(ctx: Lowering, node: Node) -> None:
    """Lower a node kept float, or say which ops can be."""
    lower = FLOAT_LOWERINGS.get(node.op_type)
    if lower is None:
        raise ExportError(f"{where(node)} is kept float, but TFLite export has no float lowering for "
                          f"{node.op_type} (it has for {', '.join(sorted(FLOAT_LOWERINGS))}); keep it int8")
    lower(ctx, node)
