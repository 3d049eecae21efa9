"""Which TFLite operators TensorFlow Lite for Microcontrollers can run.

Read from the tflite-micro runtime wedge depends on, so a model checked here loads on a board's TFLM.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# Builtin ops with a kernel in tflite-micro's MicroMutableOpResolver, all of which its Python
# interpreter (PythonOpsResolver) registers. Checked against the installed tflite-micro build by
# loading a one-op model per builtin code: every name below resolves, every other builtin does not.
TFLM_BUILTIN_OPS: Final[frozenset[str]] = frozenset(
    {
        "ABS", "ADD", "ADD_N", "ARG_MAX", "ARG_MIN", "ASSIGN_VARIABLE", "AVERAGE_POOL_2D",
        "BATCH_MATMUL", "BATCH_TO_SPACE_ND", "BROADCAST_ARGS", "BROADCAST_TO", "CALL_ONCE", "CAST",
        "CEIL", "CONCATENATION", "CONV_2D", "COS", "CUMSUM", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
        "DEQUANTIZE", "DIV", "DYNAMIC_UPDATE_SLICE", "ELU", "EMBEDDING_LOOKUP", "EQUAL", "EXP",
        "EXPAND_DIMS", "FILL", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "FULLY_CONNECTED", "GATHER",
        "GATHER_ND", "GREATER", "GREATER_EQUAL", "HARD_SWISH", "IF", "L2_NORMALIZATION", "L2_POOL_2D",
        "LEAKY_RELU", "LESS", "LESS_EQUAL", "LOG", "LOGICAL_AND", "LOGICAL_NOT", "LOGICAL_OR",
        "LOGISTIC", "LOG_SOFTMAX", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL",
        "NEG", "NOT_EQUAL", "PACK", "PAD", "PADV2", "PRELU", "QUANTIZE", "READ_VARIABLE", "REDUCE_ALL",
        "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "REVERSE_V2", "ROUND", "RSQRT", "SELECT_V2", "SHAPE", "SIN", "SLICE",
        "SOFTMAX", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE",
        "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SVDF", "TANH", "TRANSPOSE",
        "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNPACK", "VAR_HANDLE", "WHILE", "ZEROS_LIKE",
    }
)  # fmt: skip

# Custom ops the resolver registers by name (op names appear as "CUSTOM:<name>").
TFLM_CUSTOM_OPS: Final[frozenset[str]] = frozenset({"CIRCULAR_BUFFER", "TFLite_Detection_PostProcess"})

CUSTOM_PREFIX: Final = "CUSTOM:"


def tflm_supports(op_name: str) -> bool:
    """Whether TFLM has a kernel for an op named as tflite_info names it."""
    if op_name.startswith(CUSTOM_PREFIX):
        return op_name.removeprefix(CUSTOM_PREFIX) in TFLM_CUSTOM_OPS
    return op_name in TFLM_BUILTIN_OPS


def tflm_unsupported(op_names: Iterable[str]) -> list[str]:
    """The distinct ops TFLM cannot run, sorted."""
    return sorted({name for name in op_names if not tflm_supports(name)})
