"""Per-channel affine maps as a 1x1 depthwise conv: BatchNormalization at inference, and HardSigmoid where its
int8 output grid does the clamping.

The conv's int32 accumulation rescales once, as onnxruntime's float op between QDQ pairs rounds once.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import Layout, channel_last
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.spec import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, bias_params
from wedge.quantize.tflite.table import lower_table
from wedge.runtime.types import QuantParams


def _constant_real(ctx: Lowering, node: Node, position: int, what: str) -> np.ndarray:
    tensor = ctx.tensor(node.inputs[position])
    if not tensor.constant:
        raise ExportError(f"{where(node)}: its {what} must be a constant (inference-mode BatchNormalization)")
    return tensor.real().reshape(-1)


def lower_batch_norm(ctx: Lowering, node: Node) -> None:
    """y = x * a + b per channel, a = scale / sqrt(var + eps), b = bias - mean * a."""
    x = node.inputs[0]
    if len([o for o in node.outputs if o]) > 1:
        raise ExportError(f"{where(node)} is in training mode (running statistics as outputs)")
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    scale, bias, mean, var = (_constant_real(ctx, node, i, what) for i, what in
                              enumerate(("scale", "bias", "mean", "variance"), start=1))
    epsilon = float(node.attr("epsilon", 1e-5))
    multiplier = scale / np.sqrt(var + epsilon)
    _emit_affine(ctx, node, layout, multiplier, bias - mean * multiplier)


def _emit_affine(ctx: Lowering, node: Node, layout: Layout, multiplier: np.ndarray, offset: np.ndarray) -> None:
    """y = x * multiplier + offset per channel: DEPTHWISE_CONV_2D 1x1 with weights of +-127 at |multiplier| / 127
    (so the multiplier is held exactly) and an int32 bias."""
    x, out = node.inputs[0], node.outputs[0]
    channels = multiplier.size
    weight_scales = np.maximum(np.abs(multiplier), np.finfo(np.float32).tiny) / INT8_MAX
    codes = np.where(multiplier < 0, -INT8_MAX, INT8_MAX).astype(np.int8)
    codes[multiplier == 0] = 0
    w_params = QuantParams(tuple(map(float, weight_scales)), (0,) * channels, 3)
    weights = ctx.constant(f"{node.name}/multiplier", codes.reshape(1, 1, 1, channels), np.int8, w_params)
    wanted_bias = bias_params(ctx.params(x).scales[0], weight_scales)
    bias_codes = np.clip(np.rint(offset / np.asarray(wanted_bias.scales)), INT32_MIN, INT32_MAX).astype(np.int32)
    bias_index = ctx.constant(f"{node.name}/offset", bias_codes, np.int32, wanted_bias)
    options = schema.DepthwiseConv2DOptionsT(padding=schema.Padding.VALID, strideW=1, strideH=1, depthMultiplier=1)
    ctx.emit_to("DEPTHWISE_CONV_2D", [ctx.activation(x, layout), weights, bias_index], out, layout, options)


def lower_hard_sigmoid(ctx: Lowering, node: Node) -> None:
    """clip(alpha x + beta, 0, 1). Its output grid starts at exactly 0 and ends at or below 1 (the range
    onnxruntime calibrates for it), so int8 saturation clamps as the clip does: on channel-last data it is the
    affine map alone, without the table's int32 index in the arena. Otherwise a table."""
    x, out = node.inputs[0], node.outputs[0]
    params = ctx.params(out)
    rank = len(ctx.tensor(x).shape)
    top = (INT8_MAX - params.zero_points[0]) * params.scales[0]
    channel_first = rank in (3, 4) and ctx.layout(x).same_as(channel_last(rank, where(node)))
    if params.zero_points[0] != INT8_MIN or top > 1.0 + 1e-6 or not channel_first:
        lower_table(ctx, node)
        return
    channels = ctx.tensor(x).shape[1]
    alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
    _emit_affine(ctx, node, channel_last(rank, where(node)), np.full(channels, alpha), np.full(channels, beta))
