"""One lowering function per ONNX op: each turns a QDQ graph node into TFLite int8 operator(s).

An op without a function here is an ExportError that names the node, the op, and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    flattened,
    identity,
    spatial,
    spatial_pads,
    transposed,
)
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.spec import (
    FIXED_OUTPUT_PARAMS,
    INT8_MAX,
    INT8_MIN,
    bias_params,
    bias_values,
    check_weights,
    constant_params,
    real_to_code,
    same_params,
)
from wedge.quantize.tflite.table import lower_table
from wedge.runtime.types import QuantParams

Act = schema.ActivationFunctionType
Lower = Callable[[Lowering, Node], None]

# ONNX ops that run on channel-last data in TFLite; a graph input they read is laid out NHWC.
CHANNEL_LAST_OPS: Final = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                                     "GlobalMaxPool", "Resize", "BatchNormalization"})
_FC_OPS: Final = frozenset({"Gemm", "MatMul"})
_RELU6: Final = (0.0, 6.0)
# An ONNX output grid this much finer than a kernel's fixed one is kept with a table instead.
FINE_GRID_RATIO: Final = 0.5
# Above this many filter bytes (H x W x C), global average pooling uses MEAN instead of a ones-filter.
GAP_FILTER_MAX_BYTES: Final = 16 * 1024


# --- shared pieces ------------------------------------------------------------------------------


def attr_ints(node: Node, key: str, default: Sequence[int]) -> list[int]:
    return [int(v) for v in node.attr(key, default)]


def constant_input(ctx: Lowering, node: Node, position: int, what: str) -> np.ndarray:
    name = node.inputs[position] if len(node.inputs) > position else ""
    if not name or not ctx.tensor(name).constant:
        raise ExportError(f"{where(node)}: its {what} must be a constant; computed {what}s cannot be exported")
    data = ctx.tensor(name).data
    assert data is not None
    return data


def optional_constant(ctx: Lowering, node: Node, position: int) -> np.ndarray | None:
    name = node.inputs[position] if len(node.inputs) > position else ""
    if not name:
        return None
    tensor = ctx.tensor(name)
    if not tensor.constant:
        raise ExportError(f"{where(node)}: input {position} must be a constant")
    return tensor.data


def _activation_code(ctx: Lowering, node: Node) -> int | None:
    """The fused-activation code an activation node amounts to, or None when it has none."""
    if node.op_type == "Relu":
        return Act.RELU
    if node.op_type == "Clip":
        low, high = _clip_bounds(ctx, node)
        if (low, high) == _RELU6:
            return Act.RELU6
        if low == 0.0 and math.isinf(high):
            return Act.RELU
    return None


def fuse_activation(ctx: Lowering, out: str) -> tuple[int, str]:
    """Fuse a following Relu/Relu6 into the op making `out` when that is exact: the activation is the only
    reader and keeps the same int8 grid, so clamping codes at the grid's zero (and 6) is what ONNX computes."""
    readers = ctx.graph.consumers(out)
    if len(readers) != 1 or any(o.tensor == out for o in ctx.graph.outputs):
        return Act.NONE, out
    reader = readers[0]
    code = _activation_code(ctx, reader)
    if code is None or not same_params(ctx.params(out), ctx.params(reader.outputs[0])):
        return Act.NONE, out
    ctx.skipped.add(reader.name)
    return code, reader.outputs[0]


def operand(ctx: Lowering, node: Node, name: str, layout: Layout) -> int:
    """An elementwise operand in `layout`: an activation converted, or a constant laid out and quantized."""
    tensor = ctx.tensor(name)
    if not tensor.constant:
        return ctx.activation(name, layout)
    assert tensor.data is not None
    if tensor.quant is not None and not tensor.quant.per_axis and tensor.dtype == np.int8:
        return ctx.constant(name, broadcast_constant(np.asarray(tensor.data), layout), np.int8, tensor.quant)
    # A float constant, or one on a per-channel grid that an elementwise op cannot take: requantize it.
    return constant_operand(ctx, name, tensor.real(), layout)


def constant_operand(ctx: Lowering, label: str, real: np.ndarray, layout: Layout) -> int:
    """Real constant values as an int8 elementwise operand in `layout`, on a grid that holds their extremes."""
    params = constant_params(real)
    codes = params.quantize(real, np.int8)
    return ctx.constant(label, broadcast_constant(np.asarray(codes), layout), np.int8, params)


def main_layout(ctx: Lowering, node: Node) -> Layout:
    """The layout an elementwise op runs in: that of its first activation input."""
    for name in node.inputs:
        if name and not ctx.tensor(name).constant:
            return ctx.layout(name)
    raise ExportError(f"{where(node)} has only constant inputs; fold it before export")


def _sameconv_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_padding(node: Node, in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
             dilations: tuple[int, int], rank: int) -> tuple[int, tuple[int, int, int, int]]:
    """(TFLite padding, explicit pads left over for a PAD op) for a conv or pool."""
    auto_pad = node.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    same = [_sameconv_padding(s, k, st, d) for s, k, st, d in zip(in_hw, kernel, strides, dilations, strict=True)]
    same_pads = (same[0][0], same[1][0], same[0][1], same[1][1])
    if auto_pad == "VALID":
        return schema.Padding.VALID, (0, 0, 0, 0)
    if auto_pad == "SAME_UPPER":
        return schema.Padding.SAME, (0, 0, 0, 0)
    if auto_pad == "SAME_LOWER":
        pads = (same[0][1], same[1][1], same[0][0], same[1][0])
    else:
        pads = spatial_pads(attr_ints(node, "pads", [0] * (2 * (rank - 2))), rank)
    if not any(pads):
        return schema.Padding.VALID, (0, 0, 0, 0)
    if pads == same_pads:
        return schema.Padding.SAME, (0, 0, 0, 0)
    return schema.Padding.VALID, pads


def pad_spatial(ctx: Lowering, node: Node, source: int, x: str, pads: tuple[int, int, int, int],
                 value: int) -> int:
    """A PADV2 op that pads H and W of a channel-last tensor with the int8 code `value`."""
    top, left, bottom, right = pads
    record = ctx.writer.tensor(source)
    n, h, w, c = record.shape
    paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
    out = ctx.writer.add_tensor(f"{x}/padded", (n, h + top + bottom, w + left + right, c), np.int8, record.quant)
    fill = ctx.constant(f"{x}/pad_value", np.array([value], np.int8), np.int8, record.quant, shape=())
    ctx.emit("PADV2", [source, ctx.constant("paddings", paddings, np.int32), fill], [out], schema.PadV2OptionsT())
    return out


def spatial_setup(ctx: Lowering, node: Node, kernel: Sequence[int]) -> tuple[Layout, int, tuple[int, int],
                                                                             tuple[int, int], tuple[int, int]]:
    x = node.inputs[0]
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    n_spatial = rank - 2
    kernel_hw = spatial(kernel, rank, 1)
    strides = spatial(attr_ints(node, "strides", [1] * n_spatial), rank, 1)
    dilations = spatial(attr_ints(node, "dilations", [1] * n_spatial), rank, 1)
    return layout, rank, kernel_hw, strides, dilations


# --- convolution and fully-connected ------------------------------------------------------------


def lower_conv(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    weights_name = node.inputs[1]
    weights = ctx.tensor(weights_name)
    if not weights.constant:
        raise ExportError(f"{where(node)}: its weights are computed at run time; export needs constant weights")
    check_weights(weights.quant if weights.dtype == np.int8 else None, where(node))
    assert weights.data is not None and weights.quant is not None
    if weights.quant.per_axis and weights.quant.axis != 0:
        raise ExportError(f"{where(node)}: weights are quantized along axis {weights.quant.axis}; TFLite needs "
                          "per-output-channel (axis 0) scales")
    layout, rank, kernel, strides, dilations = spatial_setup(ctx, node, weights.data.shape[2:])
    in_shape = ctx.tensor(x).shape
    channels_in, channels_out = in_shape[1], weights.data.shape[0]
    group = int(node.attr("group", 1))
    in_hw = spatial(in_shape[2:], rank, 1)
    padding, pads = conv_padding(node, in_hw, kernel, strides, dilations, rank)
    source = ctx.activation(x, layout)
    in_params = ctx.params(x)
    if any(pads):
        source = pad_spatial(ctx, node, source, x, pads, in_params.zero_points[0])
    scales = np.broadcast_to(np.asarray(weights.quant.scales, np.float64), (channels_out,))
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias_tensor = ctx.tensor(bias_name) if bias_name else None
    wanted_bias = bias_params(in_params.scales[0], scales)
    bias = bias_values(None if bias_tensor is None else bias_tensor.data,
                       None if bias_tensor is None else bias_tensor.quant, wanted_bias, channels_out, where(node))
    activation, out = fuse_activation(ctx, out)
    if group == 1:
        w_params = QuantParams(tuple(map(float, scales)), (0,) * channels_out, 0)
        w_index = ctx.constant(weights_name, conv_weights(weights.data), np.int8, w_params)
        b_index = ctx.constant(f"{bias_name or out}/bias", bias, np.int32, wanted_bias)
        options = schema.Conv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                        fusedActivationFunction=activation, dilationWFactor=dilations[1],
                                        dilationHFactor=dilations[0])
        ctx.emit_to("CONV_2D", [source, w_index, b_index], out, layout, options)
    elif group == channels_in and weights.data.shape[1] == 1:
        w_params = QuantParams(tuple(map(float, scales)), (0,) * channels_out, 3)
        w_index = ctx.constant(weights_name, depthwise_weights(weights.data), np.int8, w_params)
        b_index = ctx.constant(f"{bias_name or out}/bias", bias, np.int32, wanted_bias)
        options = schema.DepthwiseConv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                                 depthMultiplier=channels_out // channels_in,
                                                 fusedActivationFunction=activation,
                                                 dilationWFactor=dilations[1], dilationHFactor=dilations[0])
        ctx.emit_to("DEPTHWISE_CONV_2D", [source, w_index, b_index], out, layout, options)
    else:
        _grouped_conv(ctx, node, source, out, layout, group, scales, bias, wanted_bias, padding, strides,
                      dilations, activation)


def _grouped_conv(ctx: Lowering, node: Node, source: int, out: str, layout: Layout, group: int,
                  scales: np.ndarray, bias: np.ndarray, wanted_bias: QuantParams, padding: int,
                  strides: tuple[int, int], dilations: tuple[int, int], activation: int) -> None:
    """TFLite-Micro's CONV_2D has no groups: SPLIT the channels, one CONV_2D per group, CONCATENATION."""
    weights = ctx.tensor(node.inputs[1])
    assert weights.data is not None
    record = ctx.writer.tensor(source)
    n, h, w, channels = record.shape
    per_in, per_out = channels // group, weights.data.shape[0] // group
    parts = [ctx.writer.add_tensor(f"{out}/group{g}_in", (n, h, w, per_in), np.int8, record.quant)
             for g in range(group)]
    ctx.emit("SPLIT", [ctx.constant("axis", np.array(3, np.int32), np.int32, shape=()), source], parts,
             schema.SplitOptionsT(numSplits=group))
    out_shape = layout.tflite_shape(ctx.tensor(out).shape)
    results: list[int] = []
    for g, part in enumerate(parts):
        channel_slice = slice(g * per_out, (g + 1) * per_out)
        part_scales = scales[channel_slice]
        w_params = QuantParams(tuple(map(float, part_scales)), (0,) * per_out, 0)
        w_index = ctx.constant(f"{node.inputs[1]}/group{g}", conv_weights(weights.data[channel_slice]), np.int8,
                               w_params)
        b_params = QuantParams(wanted_bias.scales[channel_slice], (0,) * per_out, 0)
        b_index = ctx.constant(f"{out}/group{g}_bias", bias[channel_slice], np.int32, b_params)
        result = ctx.writer.add_tensor(f"{out}/group{g}", (*out_shape[:3], per_out), np.int8, ctx.params(out))
        options = schema.Conv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                        fusedActivationFunction=activation, dilationWFactor=dilations[1],
                                        dilationHFactor=dilations[0])
        ctx.emit("CONV_2D", [part, w_index, b_index], [result], options)
        results.append(result)
    ctx.emit_to("CONCATENATION", results, out, layout, schema.ConcatenationOptionsT(axis=3))


def dense_input(ctx: Lowering, a: str, matrix: np.ndarray, *, as_float: bool = False) -> tuple[np.ndarray, int]:
    """A dense layer's input tensor, and its [units, K] weights with columns in that tensor's feature order (a
    flattened channel-last tensor keeps its bytes; the columns move instead)."""
    fetch = ctx.float_activation if as_float else ctx.activation
    layout = ctx.layout(a)
    if layout.order is not None:
        return matrix[:, layout.order], fetch(a)
    return matrix, fetch(a, identity(len(ctx.tensor(a).shape)))


def lower_fully_connected(ctx: Lowering, node: Node) -> None:
    """Gemm, or MatMul by a constant, as FULLY_CONNECTED with [units, K] weights."""
    a, out = node.inputs[0], node.outputs[0]
    weights_name = node.inputs[1]
    weights = ctx.tensor(weights_name)
    if not weights.constant:
        _batch_matmul(ctx, node)
        return
    check_weights(weights.quant if weights.dtype == np.int8 else None, where(node))
    assert weights.data is not None and weights.quant is not None
    if node.op_type == "Gemm":
        if int(node.attr("transA", 0)):
            raise ExportError(f"{where(node)} has transA=1, which has no TFLite fully-connected equivalent")
        trans_b = bool(node.attr("transB", 0))
        alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    else:
        trans_b, alpha, beta = False, 1.0, 1.0
    if weights.data.ndim != 2:
        raise ExportError(f"{where(node)} has rank-{weights.data.ndim} weights; TFLite export supports 2-D ones")
    matrix = weights.data if trans_b else weights.data.T  # [units, K]
    units = matrix.shape[0]
    channel_axis = 0 if trans_b else 1
    if weights.quant.per_axis and weights.quant.axis % 2 != channel_axis:
        raise ExportError(f"{where(node)}: weights are quantized along the input axis; TFLite needs "
                          "per-output-channel scales")
    scales = np.broadcast_to(np.asarray(weights.quant.scales, np.float64), (units,)) * alpha
    matrix, source = dense_input(ctx, a, matrix)
    in_params = ctx.params(a)
    wanted_bias = bias_params(in_params.scales[0], scales)
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias_tensor = ctx.tensor(bias_name) if bias_name else None
    if bias_tensor is not None and not bias_tensor.constant:
        raise ExportError(f"{where(node)} adds an activation as its bias; wedge quantize splits such a Gemm into "
                          "MatMul and Add: quantize the float model with it")
    bias_data = None if bias_tensor is None else np.broadcast_to(bias_tensor.data, (units,))
    bias_quant = None if bias_tensor is None else bias_tensor.quant
    if beta != 1.0 and bias_data is not None:
        real = bias_data.astype(np.float64) if bias_quant is None else bias_quant.dequantize(bias_data)
        bias_data, bias_quant = real * beta, None
    bias = bias_values(bias_data, bias_quant, wanted_bias, units, where(node))
    w_params = QuantParams(tuple(map(float, scales)), (0,) * units, 0)
    w_index = ctx.constant(weights_name, np.ascontiguousarray(matrix), np.int8, w_params)
    b_index = ctx.constant(f"{bias_name or out}/bias", bias, np.int32, wanted_bias)
    activation, out = fuse_activation(ctx, out)
    rank = len(ctx.tensor(out).shape)
    options = schema.FullyConnectedOptionsT(fusedActivationFunction=activation, keepNumDims=rank > 2)
    ctx.emit_to("FULLY_CONNECTED", [source, w_index, b_index], out, identity(rank), options)


def _batch_matmul(ctx: Lowering, node: Node) -> None:
    """MatMul of two activations (attention's Q K^T and A V): BATCH_MATMUL on ONNX-layout tensors."""
    if node.op_type != "MatMul":
        raise ExportError(f"{where(node)} multiplies two activations; TFLite export supports that for MatMul only")
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    ranks = [len(ctx.tensor(n).shape) for n in (a, b)]
    if min(ranks) < 2 or max(ranks) > 5:
        raise ExportError(f"{where(node)} multiplies rank-{ranks[0]} by rank-{ranks[1]} tensors; TFLite's "
                          "BATCH_MATMUL takes ranks 2 to 5")
    inputs = [ctx.activation(name, identity(rank)) for name, rank in zip((a, b), ranks, strict=True)]
    ctx.emit_to("BATCH_MATMUL", inputs, out, identity(len(ctx.tensor(out).shape)),
                schema.BatchMatMulOptionsT(adjX=False, adjY=False))


# --- elementwise ----------------------------------------------------------------------------------


def _binary(op: str, options: Callable[[int], object]) -> Lower:
    def lower(ctx: Lowering, node: Node) -> None:
        layout = main_layout(ctx, node)
        if layout.order is not None:
            layout = identity(layout.rank)
        out_rank = len(ctx.tensor(node.outputs[0]).shape)
        if out_rank != layout.rank:
            layout = identity(out_rank)
        inputs = [operand(ctx, node, name, layout) for name in node.inputs[:2]]
        activation, out = fuse_activation(ctx, node.outputs[0])
        ctx.emit_to(op, inputs, out, layout, options(activation))

    return lower


lower_add = _binary("ADD", lambda act: schema.AddOptionsT(fusedActivationFunction=act))
lower_sub = _binary("SUB", lambda act: schema.SubOptionsT(fusedActivationFunction=act))
lower_mul = _binary("MUL", lambda act: schema.MulOptionsT(fusedActivationFunction=act))
lower_div_builtin = _binary("DIV", lambda act: schema.DivOptionsT(fusedActivationFunction=act))


def _unary(op: str, options: Callable[[Node], object] | None = None) -> Lower:
    def lower(ctx: Lowering, node: Node) -> None:
        x = node.inputs[0]
        layout = ctx.layout(x)
        ctx.emit_to(op, [ctx.activation(x)], node.outputs[0], layout, None if options is None else options(node))

    return lower


def _fixed_grid(op: str) -> Lower:
    """LOGISTIC and TANH write a fixed output grid (1/256, 1/128). Where onnxruntime calibrated a much finer
    one (a detector's probability map that stays near 0), requantizing from the coarse grid would lose every
    value below one coarse step: an exact table keeps ONNX's grid."""
    builtin = _unary(op)

    def lower(ctx: Lowering, node: Node) -> None:
        if ctx.params(node.outputs[0]).scales[0] < FINE_GRID_RATIO * FIXED_OUTPUT_PARAMS[op].scales[0]:
            lower_table(ctx, node)
            return
        builtin(ctx, node)

    return lower


lower_sigmoid = _fixed_grid("LOGISTIC")
lower_tanh = _fixed_grid("TANH")
lower_relu = _unary("RELU")
lower_leaky_relu = _unary("LEAKY_RELU", lambda n: schema.LeakyReluOptionsT(alpha=float(n.attr("alpha", 0.01))))
lower_hard_swish = _unary("HARD_SWISH")


def _clip_bounds(ctx: Lowering, node: Node) -> tuple[float, float]:
    def bound(position: int, attr: str, default: float) -> float:
        if len(node.inputs) > position and node.inputs[position]:
            tensor = ctx.tensor(node.inputs[position])
            if not tensor.constant:
                raise ExportError(f"{where(node)}: its bounds must be constants")
            assert tensor.data is not None
            values = tensor.data if tensor.quant is None else tensor.quant.dequantize(tensor.data)
            return float(np.asarray(values).reshape(-1)[0])
        return float(node.attr(attr, default))

    return bound(1, "min", -math.inf), bound(2, "max", math.inf)


def lower_clip(ctx: Lowering, node: Node) -> None:
    code = _activation_code(ctx, node)
    if code == Act.RELU:
        lower_relu(ctx, node)
        return
    if code == Act.RELU6:
        _unary("RELU6")(ctx, node)
        return
    # Any other range: MAXIMUM/MINIMUM against codes on the output grid (they need one shared grid).
    x, out = node.inputs[0], node.outputs[0]
    layout = ctx.layout(x)
    params = ctx.params(out)
    source = ctx.requantized(ctx.activation(x), params, x)
    low, high = _clip_bounds(ctx, node)
    steps = [(op, value) for op, value in (("MAXIMUM", low), ("MINIMUM", high)) if math.isfinite(value)]
    for position, (op, value) in enumerate(steps):
        code_value = ctx.constant(f"{out}/{op.lower()}", np.array([real_to_code(value, params)], np.int8),
                                  np.int8, params, shape=(1,))
        if position == len(steps) - 1:
            ctx.emit_to(op, [source, code_value], out, layout)
        else:
            step = ctx.writer.add_tensor(f"{out}/{op.lower()}", ctx.writer.tensor(source).shape, np.int8, params)
            ctx.emit(op, [source, code_value], [step])
            source = step
    if not steps:
        ctx.alias(out, source, layout)


def lower_softmax(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.tensor(x).shape)
    axis = int(node.attr("axis", -1)) % rank
    layout = ctx.layout(x)
    if layout.order is not None or layout.axis(axis) != len(layout.tflite_shape(ctx.tensor(x).shape)) - 1:
        layout = identity(rank)
        if axis != rank - 1:
            raise ExportError(f"{where(node)} normalizes axis {axis}; TFLite SOFTMAX normalizes the last axis "
                              "only: move the class axis last before Softmax")
    ctx.emit_to("SOFTMAX", [ctx.activation(x, layout)], out, layout, schema.SoftmaxOptionsT(beta=1.0))


# --- pooling and reductions -----------------------------------------------------------------------


def _averaging_filter(ctx: Lowering, source: int, out: str, layout: Layout, kernel: tuple[int, int],
                      strides: tuple[int, int], padding: int, x: str) -> None:
    """Average with a depthwise convolution: its int32 sum is exact and rescaled once, whereas TFLM's MEAN
    rounds the input zero point and the 1/N division separately (often a quantum off) and AVERAGE_POOL_2D
    rounds onto the input grid before any requantization. The filter holds 127s at scale 1/(127 N), not 1s
    at 1/N: TFLM's fixed-point rescale keeps as many fraction bits as the multiplier is small. Padding
    counts as zeros, as ONNX's count_include_pad=1."""
    channels = ctx.writer.tensor(source).shape[3]
    scale = 1.0 / (INT8_MAX * kernel[0] * kernel[1])
    weight_params = QuantParams((scale,) * channels, (0,) * channels, 3)
    weights = ctx.constant(f"{out}/mean_filter", np.full((1, *kernel, channels), INT8_MAX, np.int8), np.int8,
                           weight_params)
    wanted_bias = bias_params(ctx.params(x).scales[0], np.full(channels, scale))
    bias = ctx.constant(f"{out}/bias", np.zeros(channels, np.int32), np.int32, wanted_bias)
    options = schema.DepthwiseConv2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                             depthMultiplier=1)
    ctx.emit_to("DEPTHWISE_CONV_2D", [source, weights, bias], out, layout, options)


def _pool(op: str) -> Lower:
    def lower(ctx: Lowering, node: Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        kernel_attr = attr_ints(node, "kernel_shape", [])
        layout, rank, kernel, strides, dilations = spatial_setup(ctx, node, kernel_attr)
        if dilations != (1, 1):
            raise ExportError(f"{where(node)} has dilations; TFLite pools have none")
        in_hw = spatial(ctx.tensor(x).shape[2:], rank, 1)
        out_hw = spatial(ctx.tensor(out).shape[2:], rank, 1)
        padding, pads = conv_padding(node, in_hw, kernel, strides, dilations, rank)
        expected = [(s + p0 + p1 - k) // st + 1 for s, p0, p1, k, st in
                    zip(in_hw, pads[:2], pads[2:], kernel, strides, strict=True)]
        if padding == schema.Padding.VALID and tuple(expected) != out_hw:
            raise ExportError(f"{where(node)} uses ceil_mode, which TFLite pools do not have; export the model "
                              "with ceil_mode=0 or explicit padding")
        source = ctx.activation(x, layout)
        params = ctx.params(x)
        padded = any(pads) or (padding == schema.Padding.SAME and any(
            _sameconv_padding(s, k, st, 1) != (0, 0) for s, k, st in zip(in_hw, kernel, strides, strict=True)))
        if op == "AVERAGE_POOL_2D":
            include_pad = bool(node.attr("count_include_pad", 0))
            if padded and not include_pad and any(pads):
                raise ExportError(f"{where(node)} averages over padding it excludes with pads TFLite cannot "
                                  "express (not SAME): export it with SAME or no padding")
            if (include_pad and padded) or (not padded and not same_params(params, ctx.params(out))):
                if any(pads):
                    source = pad_spatial(ctx, node, source, x, pads, params.zero_points[0])
                _averaging_filter(ctx, source, out, layout, kernel, strides, padding, x)
                return
        elif any(pads):
            source = pad_spatial(ctx, node, source, x, pads, INT8_MIN)
        options = schema.Pool2DOptionsT(padding=padding, strideW=strides[1], strideH=strides[0],
                                        filterWidth=kernel[1], filterHeight=kernel[0])
        ctx.emit_to(op, [source], out, layout, options)

    return lower


lower_max_pool = _pool("MAX_POOL_2D")
lower_average_pool = _pool("AVERAGE_POOL_2D")


def lower_global_average_pool(ctx: Lowering, node: Node) -> None:
    """The averaging filter over all of H x W; inputs whose filter would cost much flash use MEAN."""
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    source = ctx.activation(x, layout)
    _, height, width, channels = ctx.writer.tensor(source).shape
    if height * width * channels > GAP_FILTER_MAX_BYTES:
        axes = ctx.int32_vector("axes", [1, 2])
        ctx.emit_to("MEAN", [source, axes], out, layout, schema.ReducerOptionsT(keepDims=True))
        return
    _averaging_filter(ctx, source, out, layout, (height, width), (1, 1), schema.Padding.VALID, x)


def lower_global_max_pool(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    height, width = spatial(ctx.tensor(x).shape[2:], rank, 1)
    options = schema.Pool2DOptionsT(padding=schema.Padding.VALID, strideW=1, strideH=1, filterWidth=width,
                                    filterHeight=height)
    ctx.emit_to("MAX_POOL_2D", [ctx.activation(x, layout)], out, layout, options)


def lower_reduce_mean(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.tensor(x).shape)
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(a) % rank for a in constant_input(ctx, node, 1, "axes").reshape(-1)]
    else:
        axes = [int(a) % rank for a in node.attr("axes", range(rank))]
    keep = bool(node.attr("keepdims", 1))
    layout = ctx.layout(x)
    if layout.order is not None:
        layout = identity(rank)
    tflite_axes = sorted(layout.axis(a) for a in axes)
    if keep:
        out_layout = layout
    else:
        remaining = [a for a in layout.tflite_axes() if a is None or a not in axes]
        renumber = {a: i for i, a in enumerate(sorted(a for a in remaining if a is not None))}
        inserted = tuple(i for i, a in enumerate(remaining) if a is None)
        out_layout = Layout(tuple(renumber[a] for a in remaining if a is not None), inserted)
    source = ctx.activation(x, layout)
    in_shape = ctx.writer.tensor(source).shape
    if tflite_axes == [len(in_shape) - 1] and in_shape[-1] > 1:
        _mean_of_last_axis(ctx, source, out, out_layout, keep)
        return
    if len(tflite_axes) == 1 and in_shape[tflite_axes[0]] > 1 and not _is_spatial_mean(layout, tflite_axes):
        _mean_of_inner_axis(ctx, source, tflite_axes[0], out, out_layout)
        return
    ctx.emit_to("MEAN", [source, ctx.int32_vector("axes", tflite_axes)], out, out_layout,
                schema.ReducerOptionsT(keepDims=keep))


def _is_spatial_mean(layout: Layout, tflite_axes: list[int]) -> bool:
    return layout.perm == (0, 2, 3, 1) and set(tflite_axes) <= {1, 2}


def _mean_of_inner_axis(ctx: Lowering, source: int, axis: int, out: str, out_layout: Layout) -> None:
    """The mean over one inner axis as BATCH_MATMUL of 127s at 1/(127 n) by the tensor seen as [before, n, after]:
    an exact int32 sum rescaled once (TFLM's MEAN rounds twice)."""
    record = ctx.writer.tensor(source)
    assert record.quant is not None
    before, count = int(np.prod(record.shape[:axis])), record.shape[axis]
    after = int(np.prod(record.shape[axis + 1:]))
    viewed = ctx.writer.add_tensor(f"{out}/as_matrix", (before, count, after), np.int8, record.quant)
    ctx.reshape(source, viewed, (before, count, after))
    scale = 1.0 / (INT8_MAX * count)
    ones = ctx.constant(f"{out}/mean_weights", np.full((1, 1, count), INT8_MAX, np.int8), np.int8,
                        QuantParams((scale,), (0,)))
    summed = ctx.writer.add_tensor(f"{out}/summed", (before, 1, after), np.int8, ctx.params(out))
    ctx.emit("BATCH_MATMUL", [ones, viewed], [summed], schema.BatchMatMulOptionsT(adjX=False, adjY=False))
    shape = out_layout.tflite_shape(ctx.tensor(out).shape)
    result = ctx.writer.add_tensor(out, shape, np.int8, ctx.params(out))
    ctx.reshape(summed, result, shape)
    ctx.alias(out, result, out_layout)


def _mean_of_last_axis(ctx: Lowering, source: int, out: str, out_layout: Layout, keep: bool) -> None:
    """The mean over the last axis (LayerNorm's) as FULLY_CONNECTED by 127s at 1/(127 C): its int32 sum is exact
    and rescaled once, where TFLM's MEAN rounds twice and is often a quantum off, which the division by the
    deviation that follows in a LayerNorm amplifies."""
    record = ctx.writer.tensor(source)
    channels = record.shape[-1]
    scale = 1.0 / (INT8_MAX * channels)
    weights = ctx.constant(f"{out}/mean_weights", np.full((1, channels), INT8_MAX, np.int8), np.int8,
                           QuantParams((scale,), (0,), 0))
    assert record.quant is not None
    wanted_bias = bias_params(record.quant.scales[0], np.array([scale]))
    bias = ctx.constant(f"{out}/mean_bias", np.zeros(1, np.int32), np.int32, wanted_bias)
    options = schema.FullyConnectedOptionsT(keepNumDims=True)
    if keep:
        ctx.emit_to("FULLY_CONNECTED", [source, weights, bias], out, out_layout, options)
        return
    summed = ctx.writer.add_tensor(f"{out}/kept", (*record.shape[:-1], 1), np.int8, ctx.params(out))
    ctx.emit("FULLY_CONNECTED", [source, weights, bias], [summed], options)
    result = ctx.writer.add_tensor(out, out_layout.tflite_shape(ctx.tensor(out).shape), np.int8, ctx.params(out))
    ctx.reshape(summed, result, out_layout.tflite_shape(ctx.tensor(out).shape))
    ctx.alias(out, result, out_layout)


# --- moving values --------------------------------------------------------------------------------


def _feeds_only_fully_connected(ctx: Lowering, name: str) -> bool:
    readers = ctx.graph.consumers(name)
    return bool(readers) and all(r.op_type in _FC_OPS and r.inputs[0] == name and r.inputs[1] != name
                                 for r in readers) and all(o.tensor != name for o in ctx.graph.outputs)


def lower_reshape(ctx: Lowering, node: Node) -> None:
    """Reshape, Flatten, Squeeze and Unsqueeze: the output shape is known, so all four are one RESHAPE."""
    x, out = node.inputs[0], node.outputs[0]
    in_shape, out_shape = ctx.tensor(x).shape, ctx.tensor(out).shape
    layout = ctx.layout(x)
    params = ctx.params(x)
    if layout.order is not None:
        raise ExportError(f"{where(node)} reshapes a flattened channel-last tensor again; this graph shape is not "
                          "one wedge can export")
    if not layout.keeps_memory_order(in_shape):
        if len(out_shape) == 2 and out_shape[0] == 1 and _feeds_only_fully_connected(ctx, out):
            # Flatten before a dense layer: keep NHWC bytes and permute the dense weights' columns instead.
            out_layout = flattened(layout, in_shape)
            source = ctx.activation(x)
            index = ctx.writer.add_tensor(out, out_layout.tflite_shape(out_shape), np.int8, params)
            ctx.reshape(source, index, out_layout.tflite_shape(out_shape))
            ctx.alias(out, ctx.requantized(index, ctx.params(out), out), out_layout)
            return
        layout = identity(len(in_shape))
    source = ctx.activation(x, layout)
    target = identity(len(out_shape))
    index = ctx.writer.add_tensor(out, target.tflite_shape(out_shape), np.int8, params)
    ctx.reshape(source, index, target.tflite_shape(out_shape))
    ctx.alias(out, ctx.requantized(index, ctx.params(out), out), target)


def lower_transpose(ctx: Lowering, node: Node) -> None:
    """No op: the output reuses the input's TFLite tensor with a permuted layout."""
    x, out = node.inputs[0], node.outputs[0]
    rank = len(ctx.tensor(x).shape)
    perm = attr_ints(node, "perm", list(reversed(range(rank))))
    layout = ctx.layout(x)
    if layout.order is not None:
        raise ExportError(f"{where(node)} transposes a flattened channel-last tensor; this graph shape is not one "
                          "wedge can export")
    source = ctx.requantized(ctx.activation(x), ctx.params(out), out)
    ctx.alias(out, source, transposed(layout, perm))


def lower_identity(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    ctx.alias(out, ctx.requantized(ctx.activation(x), ctx.params(out), out), ctx.layout(x))


def lower_requantize(ctx: Lowering, node: Node) -> None:
    """Q(DQ(x)) onto another grid: QUANTIZE int8 -> int8."""
    lower_identity(ctx, node)


def lower_concat(ctx: Lowering, node: Node) -> None:
    out = node.outputs[0]
    rank = len(ctx.tensor(out).shape)
    axis = int(node.attr("axis", 0)) % rank
    layout = main_layout(ctx, node)
    if layout.order is not None:
        layout = identity(rank)
    params = ctx.params(out)
    inputs = [ctx.requantized(operand(ctx, node, name, layout), params, name) for name in node.inputs if name]
    ctx.emit_to("CONCATENATION", inputs, out, layout, schema.ConcatenationOptionsT(axis=layout.axis(axis)))


def lower_pad(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    mode = node.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise ExportError(f"{where(node)} pads in {mode!r} mode; TFLite export supports constant padding")
    rank = len(ctx.tensor(x).shape)
    if len(node.inputs) > 1 and node.inputs[1]:
        pads = [int(p) for p in constant_input(ctx, node, 1, "pads").reshape(-1)]
    else:
        pads = attr_ints(node, "pads", [0] * 2 * rank)
    if len(node.inputs) > 3 and node.inputs[3]:
        raise ExportError(f"{where(node)} pads selected axes only (opset 18 axes input); not supported")
    value_data = optional_constant(ctx, node, 2)
    if value_data is None:
        value = 0.0
    else:
        value_tensor = ctx.tensor(node.inputs[2])
        raw = value_data if value_tensor.quant is None else value_tensor.quant.dequantize(value_data)
        value = float(np.asarray(raw).reshape(-1)[0]) if np.asarray(raw).size else 0.0
    layout = ctx.layout(x)
    if layout.order is not None:
        layout = identity(rank)
    params = ctx.params(x)
    paddings = np.zeros((len(layout.tflite_axes()), 2), np.int32)
    for onnx_axis in range(rank):
        paddings[layout.axis(onnx_axis)] = (pads[onnx_axis], pads[onnx_axis + rank])
    source = ctx.activation(x, layout)
    fill = ctx.constant(f"{x}/pad_value", np.array([real_to_code(value, params)], np.int8), np.int8, params,
                        shape=())
    ctx.emit_to("PADV2", [source, ctx.constant("paddings", paddings, np.int32), fill], out, layout,
                schema.PadV2OptionsT())
