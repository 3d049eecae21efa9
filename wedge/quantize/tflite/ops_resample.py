"""Ops that change spatial size: Resize (nearest, bilinear) and ConvTranspose, on channel-last tensors.

Resize picks the TFLite variant (align_corners, half_pixel_centers) whose sampling positions equal ONNX's for
this shape, computed both ways, so every coordinate mode ONNX and TFLite share is exact and others are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.layout import channel_last, spatial, spatial_pads
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.ops import attr_ints, optional_constant
from wedge.quantize.tflite.spec import bias_params, bias_values, check_weights
from wedge.runtime.types import QuantParams

# TFLite's two resize flags; both set is invalid.
_VARIANTS: Final = ((False, False), (False, True), (True, False))
_POSITION_TOLERANCE: Final = 1e-4


def _text(node: Node, key: str, default: str) -> str:
    value = node.attr(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _onnx_positions(node: Node, size_in: int, size_out: int, scale: float) -> np.ndarray:
    """The (real) source coordinate of every output index along one axis, as ONNX Resize defines it."""
    mode = _text(node, "coordinate_transformation_mode", "half_pixel")
    x = np.arange(size_out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if size_out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (size_in - 1) / (size_out - 1) if size_out > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    raise ExportError(f"{where(node)} uses coordinate_transformation_mode {mode!r}, which TFLite resizes lack")


def _onnx_nearest(node: Node, positions: np.ndarray, size_in: int) -> np.ndarray:
    rounding: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "round_prefer_floor": lambda v: np.ceil(v - 0.5),
        "round_prefer_ceil": lambda v: np.floor(v + 0.5),
        "floor": np.floor,
        "ceil": np.ceil,
    }
    mode = _text(node, "nearest_mode", "round_prefer_floor")
    if mode not in rounding:
        raise ExportError(f"{where(node)} uses nearest_mode {mode!r}")
    return np.clip(rounding[mode](positions), 0, size_in - 1).astype(np.int64)


def _tflite_scale(size_in: int, size_out: int, align_corners: bool) -> float:
    if align_corners and size_out > 1:
        return (size_in - 1) / (size_out - 1)
    return size_in / size_out


def _tflite_nearest(size_in: int, size_out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR's source index per output index (tflite reference_ops::ResizeNearestNeighbor)."""
    scale = np.float32(_tflite_scale(size_in, size_out, align_corners))
    offset = np.float32(0.5 if half_pixel else 0.0)
    values = (np.arange(size_out, dtype=np.float32) + offset) * scale
    index = np.floor(values + np.float32(0.5)) if align_corners else np.floor(values)
    index = np.minimum(index, size_in - 1)
    return np.maximum(index, 0).astype(np.int64) if half_pixel else index.astype(np.int64)


def _tflite_bilinear(size_in: int, size_out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """RESIZE_BILINEAR's source coordinate per output index, clamped as its two taps are."""
    scale = _tflite_scale(size_in, size_out, align_corners)
    x = np.arange(size_out, dtype=np.float64)
    positions = (x + 0.5) * scale - 0.5 if half_pixel else x * scale
    return np.clip(positions, 0, size_in - 1)


def _resize_scales(ctx: Lowering, node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[float]:
    scales = optional_constant(ctx, node, 2) if len(node.inputs) > 2 else None
    if scales is not None and scales.size == len(in_shape):
        return [float(s) for s in np.asarray(scales, np.float64).reshape(-1)]
    return [o / i for i, o in zip(in_shape, out_shape, strict=True)]


def lower_resize(ctx: Lowering, node: Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    in_shape, out_shape = ctx.tensor(x).shape, ctx.tensor(out).shape
    rank = len(in_shape)
    if rank not in (3, 4) or in_shape[:2] != out_shape[:2]:
        raise ExportError(f"{where(node)} resizes axes other than the spatial ones of an NCHW/NCW tensor; TFLite "
                          "resizes height and width only")
    mode = _text(node, "mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ExportError(f"{where(node)} uses mode {mode!r}; TFLite has nearest and bilinear resizes only")
    if int(node.attr("antialias", 0)) and any(o < i for i, o in zip(in_shape, out_shape, strict=True)):
        raise ExportError(f"{where(node)} downsamples with antialias, which TFLite resizes lack")
    scales = _resize_scales(ctx, node, in_shape, out_shape)
    axes = [(in_shape[a], out_shape[a], scales[a]) for a in range(2, rank)]
    variant = None
    for align_corners, half_pixel in _VARIANTS:
        same = True
        for size_in, size_out, scale in axes:
            positions = _onnx_positions(node, size_in, size_out, scale)
            if mode == "nearest":
                same &= bool(np.array_equal(_onnx_nearest(node, positions, size_in),
                                            _tflite_nearest(size_in, size_out, align_corners, half_pixel)))
            else:
                theirs = _tflite_bilinear(size_in, size_out, align_corners, half_pixel)
                same &= bool(np.allclose(np.clip(positions, 0, size_in - 1), theirs, atol=_POSITION_TOLERANCE))
        if same:
            variant = (align_corners, half_pixel)
            break
    if variant is None:
        raise ExportError(f"{where(node)}: its sampling positions ({_text(node, 'coordinate_transformation_mode', 'half_pixel')}"
                          f", {mode}) match no TFLite resize for {list(in_shape)} -> {list(out_shape)}")
    layout = channel_last(rank, where(node))
    height, width = spatial(out_shape[2:], rank, 1)
    size = ctx.int32_vector("size", [height, width])
    if mode == "nearest":
        op, options = "RESIZE_NEAREST_NEIGHBOR", schema.ResizeNearestNeighborOptionsT(
            alignCorners=variant[0], halfPixelCenters=variant[1])
    else:
        op, options = "RESIZE_BILINEAR", schema.ResizeBilinearOptionsT(
            alignCorners=variant[0], halfPixelCenters=variant[1])
    ctx.emit_to(op, [ctx.activation(x, layout), size], out, layout, options)


def _transposed_pad(size_in: int, size_out: int, kernel: int, stride: int) -> int:
    """The leading pad TFLite's TRANSPOSE_CONV applies with SAME padding for these sizes."""
    conv_out = -(-size_out // stride)
    total = max((conv_out - 1) * stride + kernel - size_out, 0)
    return total // 2 if conv_out == size_in else -1


def lower_conv_transpose(ctx: Lowering, node: Node) -> None:
    """TRANSPOSE_CONV with [O, kH, kW, I] weights; leading pads TFLite cannot express are cropped by SLICE."""
    x, out = node.inputs[0], node.outputs[0]
    weights = ctx.tensor(node.inputs[1])
    if not weights.constant:
        raise ExportError(f"{where(node)}: its weights are computed at run time; export needs constant weights")
    check_weights(weights.quant if weights.dtype == np.int8 else None, where(node))
    assert weights.data is not None and weights.quant is not None
    if int(node.attr("group", 1)) != 1:
        raise ExportError(f"{where(node)} is a grouped transposed convolution; TFLite's TRANSPOSE_CONV has no groups")
    rank = len(ctx.tensor(x).shape)
    n_spatial = rank - 2
    if any(d != 1 for d in attr_ints(node, "dilations", [1] * n_spatial)):
        raise ExportError(f"{where(node)} is dilated; TFLite's TRANSPOSE_CONV has no dilation")
    data = weights.data if weights.data.ndim == 4 else weights.data[:, :, None, :]  # [I, O, kH, kW]
    channels_out = data.shape[1]
    if weights.quant.per_axis and weights.quant.axis != 1:
        raise ExportError(f"{where(node)}: weights are quantized along axis {weights.quant.axis}; TFLite needs "
                          "per-output-channel scales")
    layout = channel_last(rank, where(node))
    in_hw = spatial(ctx.tensor(x).shape[2:], rank, 1)
    out_hw = spatial(ctx.tensor(out).shape[2:], rank, 1)
    kernel = (data.shape[2], data.shape[3])
    strides = spatial(attr_ints(node, "strides", [1] * n_spatial), rank, 1)
    top, left, _, _ = spatial_pads(attr_ints(node, "pads", [0] * 2 * n_spatial), rank)
    if _text(node, "auto_pad", "NOTSET") != "NOTSET":
        raise ExportError(f"{where(node)} uses auto_pad; export it with explicit pads")
    same = [_transposed_pad(i, o, k, s) for i, o, k, s in zip(in_hw, out_hw, kernel, strides, strict=True)]
    if (top, left) == (0, 0):
        padding, full_hw = schema.Padding.VALID, out_hw
    elif [top, left] == same:
        padding, full_hw = schema.Padding.SAME, out_hw
    else:
        padding, full_hw = schema.Padding.VALID, (out_hw[0] + top, out_hw[1] + left)
    scales = np.broadcast_to(np.asarray(weights.quant.scales, np.float64), (channels_out,))
    in_params = ctx.params(x)
    wanted_bias = bias_params(in_params.scales[0], scales)
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias_tensor = ctx.tensor(bias_name) if bias_name else None
    bias = bias_values(None if bias_tensor is None else bias_tensor.data,
                       None if bias_tensor is None else bias_tensor.quant, wanted_bias, channels_out, where(node))
    w_params = QuantParams(tuple(map(float, scales)), (0,) * channels_out, 0)
    w_index = ctx.constant(node.inputs[1], np.ascontiguousarray(np.transpose(data, (1, 2, 3, 0))), np.int8, w_params)
    b_index = ctx.constant(f"{bias_name or out}/bias", bias, np.int32, wanted_bias)
    source = ctx.activation(x, layout)
    options = schema.TransposeConvOptionsT(padding=padding, strideW=strides[1], strideH=strides[0])
    shape = ctx.int32_vector("output_shape", [1, *full_hw, channels_out])
    if tuple(full_hw) == tuple(out_hw):
        ctx.emit_to("TRANSPOSE_CONV", [shape, w_index, source, b_index], out, layout, options)
        return
    full = ctx.writer.add_tensor(f"{out}/uncropped", (1, *full_hw, channels_out), np.int8, ctx.params(out))
    ctx.emit("TRANSPOSE_CONV", [shape, w_index, source, b_index], [full], options)
    begin = ctx.int32_vector("begin", [0, top, left, 0])
    size = ctx.int32_vector("size", [1, *out_hw, channels_out])
    ctx.emit_to("SLICE", [full, begin, size], out, layout, schema.SliceOptionsT())

