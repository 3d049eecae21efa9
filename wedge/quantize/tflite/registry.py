"""Which function lowers each ONNX op, and the one error for an op without one.

The error names the node, the op and the three ways on: keep it float, replace it, or deploy the int8 ONNX.
"""

from __future__ import annotations

from typing import Final

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.float_ops import lower_float_node, lower_softmax
from wedge.quantize.tflite.graph import Node
from wedge.quantize.tflite.lowering import Lowering, where
from wedge.quantize.tflite.ops import (
    Lower,
    lower_add,
    lower_average_pool,
    lower_clip,
    lower_concat,
    lower_conv,
    lower_fully_connected,
    lower_global_average_pool,
    lower_global_max_pool,
    lower_hard_swish,
    lower_identity,
    lower_leaky_relu,
    lower_max_pool,
    lower_mul,
    lower_pad,
    lower_reduce_mean,
    lower_relu,
    lower_requantize,
    lower_reshape,
    lower_sigmoid,
    lower_sub,
    lower_tanh,
    lower_transpose,
)
from wedge.quantize.tflite.ops_gather import lower_gather, lower_slice
from wedge.quantize.tflite.ops_math import lower_div
from wedge.quantize.tflite.ops_norm import lower_batch_norm, lower_hard_sigmoid
from wedge.quantize.tflite.ops_resample import lower_conv_transpose, lower_resize
from wedge.quantize.tflite.table import TABLE_OPS, lower_table

LOWERINGS: Final[dict[str, Lower]] = {
    **{op: lower_table for op in TABLE_OPS},
    "Conv": lower_conv,
    "ConvTranspose": lower_conv_transpose,
    "Gemm": lower_fully_connected,
    "MatMul": lower_fully_connected,
    "Add": lower_add,
    "Sub": lower_sub,
    "Mul": lower_mul,
    "Div": lower_div,
    "Relu": lower_relu,
    "Clip": lower_clip,
    "LeakyRelu": lower_leaky_relu,
    "Sigmoid": lower_sigmoid,
    "Tanh": lower_tanh,
    "HardSwish": lower_hard_swish,
    "HardSigmoid": lower_hard_sigmoid,
    "Softmax": lower_softmax,
    "BatchNormalization": lower_batch_norm,
    "MaxPool": lower_max_pool,
    "AveragePool": lower_average_pool,
    "GlobalAveragePool": lower_global_average_pool,
    "GlobalMaxPool": lower_global_max_pool,
    "ReduceMean": lower_reduce_mean,
    "Reshape": lower_reshape,
    "Flatten": lower_reshape,
    "Squeeze": lower_reshape,
    "Unsqueeze": lower_reshape,
    "Transpose": lower_transpose,
    "Identity": lower_identity,
    "Dropout": lower_identity,
    "QuantizeLinear": lower_requantize,
    "Concat": lower_concat,
    "Pad": lower_pad,
    "Gather": lower_gather,
    "Slice": lower_slice,
    "Resize": lower_resize,
}


def supported_ops() -> list[str]:
    """The ONNX op types the TFLite export lowers, sorted."""
    return sorted(set(LOWERINGS) - {"QuantizeLinear"})


def unsupported_message(node: Node) -> str:
    """One line: the node, the op, and what the user can do instead."""
    label = f"{node.name} or {node.op_type}" if node.name else node.op_type
    return (f"{where(node)}: TFLite export has no lowering for {node.op_type}; keep it float (--keep-float "
            f"{label}), replace it in the model, or deploy the int8 ONNX with onnxruntime (--format onnx)")


def lower_node(ctx: Lowering, node: Node) -> None:
    """Lower one node (as a float island when it was kept float), or say clearly that wedge cannot."""
    if node.keep_float:
        lower_float_node(ctx, node)
        return
    lower = LOWERINGS.get(node.op_type)
    if lower is None:
        raise ExportError(unsupported_message(node))
    lower(ctx, node)
