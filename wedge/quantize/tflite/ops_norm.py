"""Normalization that is a per-channel affine map at inference: BatchNormalization as a 1x1 depthwise conv.

Its int32 accumulation rescales once, as onnxruntime's float BatchNormalization between QDQ pairs rounds once.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.edge.engines.base import QuantParams
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import channel_last
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.spec import INT8_MAX, INT32_MAX, INT32_MIN, bias_params


def _constant_real(ctx: Lowering, node: Node, position: int, what: str) -> np.ndarray:
    tensor = ctx.tensor(node.inputs[position])
    if not tensor.constant:
        raise ExportError(f"{where(node)}: its {what} must be a constant (inference-mode BatchNormalization)")
    return tensor.real().reshape(-1)


def lower_batch_norm(ctx: Lowering, node: Node) -> None:
    """y = x * a + b per channel, a = scale / sqrt(var + eps), b = bias - mean * a: DEPTHWISE_CONV_2D 1x1 with
    weights of +-127 at |a| / 127 (so a is held exactly) and an int32 bias."""
    x, out = node.inputs[0], node.outputs[0]
    if len([o for o in node.outputs if o]) > 1:
        raise ExportError(f"{where(node)} is in training mode (running statistics as outputs)")
    rank = len(ctx.tensor(x).shape)
    layout = channel_last(rank, where(node))
    scale, bias, mean, var = (_constant_real(ctx, node, i, what) for i, what in
                              enumerate(("scale", "bias", "mean", "variance"), start=1))
    epsilon = float(node.attr("epsilon", 1e-5))
    multiplier = scale / np.sqrt(var + epsilon)
    offset = bias - mean * multiplier
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
