"""The TFLite int8 quantization spec as rules the lowering checks and applies.

Weights symmetric per axis (zero point 0), int32 bias at input x weight scale, fixed output parameters for
SOFTMAX/LOGISTIC/TANH, and ops whose input and output must share parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from wedge.quantize.tflite.errors import ExportError
from wedge.runtime.types import QuantParams

INT8_MIN: Final = -128
INT8_MAX: Final = 127
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

# The kernels hard-wire these output grids (TFLM checks them in Prepare).
FIXED_OUTPUT_PARAMS: Final[dict[str, QuantParams]] = {
    "SOFTMAX": QuantParams((1.0 / 256,), (-128,)),
    "LOGISTIC": QuantParams((1.0 / 256,), (-128,)),
    "TANH": QuantParams((1.0 / 128,), (0,)),
}

# Ops that move int8 values without rescaling them: input and output must share scale and zero point.
SHARED_PARAMS_OPS: Final = frozenset({
    "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "CONCATENATION", "PAD", "PADV2", "TRANSPOSE", "SQUEEZE",
    "EXPAND_DIMS", "SPLIT", "MAXIMUM", "MINIMUM", "GATHER", "SLICE", "STRIDED_SLICE", "RESIZE_NEAREST_NEIGHBOR",
    "RESIZE_BILINEAR",
})  # fmt: skip

# ONNX ops that onnxruntime may leave in float between quantized neighbours, and how their int8 output grid
# follows: ops whose outputs stay within their input's range keep its grid, the fixed-range activations
# take the spec's grid.
_KEEPS_INPUT_PARAMS: Final = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "Identity", "Relu", "Pad",
    "ReduceMean", "ReduceMax", "ReduceMin", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Dropout",
    "Resize", "Gather", "Slice",
})  # fmt: skip
_FIXED_BY_ONNX_OP: Final[dict[str, str]] = {"Softmax": "SOFTMAX", "Sigmoid": "LOGISTIC", "Tanh": "TANH"}

# Scales closer than this are the same grid: ORT stores float32, TFLite float32, rounding differs.
_SCALE_RTOL: Final = 1e-6
# A bias scale this close to input x weight scale is taken as is; farther, the bias is requantized.
_BIAS_SCALE_RTOL: Final = 1e-4


def same_params(a: QuantParams | None, b: QuantParams | None) -> bool:
    """Whether two tensors sit on the same int8 grid."""
    if a is None or b is None:
        return a is b
    return a.zero_points == b.zero_points and bool(np.allclose(a.scales, b.scales, rtol=_SCALE_RTOL, atol=0))


def required_output_params(op: str, first_input: QuantParams | None) -> QuantParams | None:
    """The grid the spec fixes for `op`'s output: a kernel constant, its input's, or None (any grid)."""
    if op in FIXED_OUTPUT_PARAMS:
        return FIXED_OUTPUT_PARAMS[op]
    if op in SHARED_PARAMS_OPS:
        return first_input
    return None


def float_path_params(onnx_op: str, input_params: Sequence[QuantParams]) -> QuantParams | None:
    """Int8 parameters for the output of an op ORT left in float, or None when they cannot be inferred."""
    if onnx_op in _FIXED_BY_ONNX_OP:
        return FIXED_OUTPUT_PARAMS[_FIXED_BY_ONNX_OP[onnx_op]]
    if onnx_op in _KEEPS_INPUT_PARAMS and input_params:
        return input_params[0]
    if onnx_op == "Concat" and input_params and all(same_params(p, input_params[0]) for p in input_params):
        return input_params[0]
    return None


def check_weights(params: QuantParams | None, where: str) -> None:
    """Weights must be int8 symmetric (zero point 0), per tensor or per output channel."""
    if params is None:
        raise ExportError(f"{where}: its weights are float; TFLite-Micro needs int8 weights (hybrid models are "
                          "not supported): re-quantize the model with wedge quantize")
    if any(z != 0 for z in params.zero_points):
        raise ExportError(f"{where}: its weights are quantized asymmetrically (zero point "
                          f"{next(z for z in params.zero_points if z)}); the TFLite int8 spec needs symmetric "
                          "weights: re-quantize with wedge quantize (WeightSymmetric)")


def bias_params(input_scale: float, weight_scales: np.ndarray) -> QuantParams:
    """The int32 bias grid: scale = input scale x weight scale, zero point 0, one per output channel."""
    scales = input_scale * np.asarray(weight_scales, dtype=np.float64)
    return QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), 0)


def bias_values(values: np.ndarray | None, params: QuantParams | None, wanted: QuantParams, channels: int,
                where: str) -> np.ndarray:
    """Int32 bias on the `wanted` grid; ORT's bias is reused as is when it is already on that grid."""
    if values is None:
        return np.zeros(channels, np.int32)
    flat = np.asarray(values).reshape(-1)
    if flat.size != channels:
        raise ExportError(f"{where}: bias has {flat.size} values for {channels} output channels")
    if params is None:
        real = flat.astype(np.float64)  # a float bias ORT left unquantized
    else:
        scales = np.broadcast_to(np.asarray(params.scales, np.float64), (channels,))
        zero_points = np.broadcast_to(np.asarray(params.zero_points, np.float64), (channels,))
        if not any(params.zero_points) and np.allclose(scales, wanted.scales, rtol=_BIAS_SCALE_RTOL, atol=0):
            return flat.astype(np.int32)
        real = (flat.astype(np.float64) - zero_points) * scales
    quantized = np.rint(real / np.asarray(wanted.scales, np.float64))
    return np.clip(quantized, INT32_MIN, INT32_MAX).astype(np.int32)


def constant_params(values: np.ndarray) -> QuantParams:
    """An asymmetric int8 grid that holds `values` exactly at their extremes (and 0)."""
    low = min(float(np.min(values)), 0.0)
    high = max(float(np.max(values)), 0.0)
    if high == low:
        return QuantParams((1.0,), (0,))
    scale = (high - low) / (INT8_MAX - INT8_MIN)
    zero_point = int(np.clip(round(INT8_MIN - low / scale), INT8_MIN, INT8_MAX))
    return QuantParams((scale,), (zero_point,))


def real_to_code(value: float, params: QuantParams) -> int:
    """The int8 code nearest to a real value, saturated."""
    code = round(value / params.scales[0]) + params.zero_points[0]
    return int(np.clip(code, INT8_MIN, INT8_MAX))
