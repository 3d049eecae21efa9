"""Reads a .tflite flatbuffer with the object API generated from the TFLite schema that ships with LiteRT.

No TensorFlow: the identifier and every buffer's bounds are checked so a bad file is an ArtifactError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.runtime.artifacts.tflm_ops import CUSTOM_PREFIX
from wedge.runtime.types import ArtifactError

TFLITE_IDENTIFIER: Final = b"TFL3"

BUILTIN_OP_NAMES: Final[dict[int, str]] = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}

_TYPE_NAMES: Final[dict[int, str]] = {
    code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")
}

# numpy has no 4-bit, 2-bit or bfloat16 types; those tensors are reported in their storage dtype.
_NUMPY_DTYPES: Final[dict[str, np.dtype]] = {
    "FLOAT32": np.dtype(np.float32),
    "FLOAT16": np.dtype(np.float16),
    "FLOAT64": np.dtype(np.float64),
    "INT64": np.dtype(np.int64),
    "INT32": np.dtype(np.int32),
    "INT16": np.dtype(np.int16),
    "INT8": np.dtype(np.int8),
    "INT4": np.dtype(np.int8),
    "INT2": np.dtype(np.int8),
    "UINT64": np.dtype(np.uint64),
    "UINT32": np.dtype(np.uint32),
    "UINT16": np.dtype(np.uint16),
    "UINT8": np.dtype(np.uint8),
    "UINT4": np.dtype(np.uint8),
    "BFLOAT16": np.dtype(np.uint16),
    "BOOL": np.dtype(np.bool_),
    "COMPLEX64": np.dtype(np.complex64),
    "COMPLEX128": np.dtype(np.complex128),
}


def read_tflite(data: bytes, source: str) -> schema.ModelT:
    """The unpacked model; `source` names the file in error messages."""
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ArtifactError(f"{source} is not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    # The generated reader follows offsets from the file; a truncated or corrupt file makes it fail
    # with whatever struct/numpy/index error the bad offset happens to produce.
    except Exception as exc:
        raise ArtifactError(f"{source} is not a valid TFLite model (truncated or corrupt)") from exc
    if not model.subgraphs:
        raise ArtifactError(f"{source} is not a valid TFLite model (it has no subgraph)")
    for index, buffer in enumerate(model.buffers or ()):
        # Models over 2 GB keep buffers after the flatbuffer, addressed by offset and size.
        if buffer.offset > 1 and buffer.offset + buffer.size > len(data):
            raise ArtifactError(f"{source} is truncated: buffer {index} ends past the end of the file")
    problem = _dangling_index(model)
    if problem:
        raise ArtifactError(f"{source} is not a valid TFLite model ({problem})")
    return model


def _dangling_index(model: schema.ModelT) -> str | None:
    """What points outside its table (op codes, tensors, buffers), so readers can index without checks."""
    opcode_count = len(model.operatorCodes or ())
    buffer_count = len(model.buffers or ())
    for s, subgraph in enumerate(model.subgraphs):
        tensor_count = len(subgraph.tensors or ())
        for tensor in subgraph.tensors or ():
            if not 0 <= tensor.buffer < max(buffer_count, 1):
                return f"subgraph {s}: a tensor uses buffer {tensor.buffer} of {buffer_count}"
        io = [*int_list(subgraph.inputs), *int_list(subgraph.outputs)]
        operands: list[int] = []
        for op in subgraph.operators or ():
            if not 0 <= op.opcodeIndex < opcode_count:
                return f"subgraph {s}: an operator uses op code {op.opcodeIndex} of {opcode_count}"
            operands += [*int_list(op.inputs), *int_list(op.outputs)]
        # An operand of -1 marks an omitted optional input; a subgraph's own inputs are never omitted.
        bad = next((i for i in io if not 0 <= i < tensor_count), None)
        bad = bad if bad is not None else next((i for i in operands if not -1 <= i < tensor_count), None)
        if bad is not None:
            return f"subgraph {s}: tensor {bad} of {tensor_count} is referenced"
    return None


def int_list(vector: Iterable[Any] | None) -> list[int]:
    """A flatbuffer index vector as ints; the object API gives numpy arrays, or None when absent."""
    return [] if vector is None else [int(i) for i in vector]


def builtin_code(opcode: schema.OperatorCodeT) -> int:
    """The op's builtin code; files store codes < 127 in `deprecated_builtin_code`, so take the larger."""
    return max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))


def op_name(model: schema.ModelT, opcode_index: int) -> str:
    """A builtin op's schema name (CONV_2D), or CUSTOM:<code> for a custom op."""
    opcode = model.operatorCodes[opcode_index]
    code = builtin_code(opcode)
    if code == schema.BuiltinOperator.CUSTOM:
        custom = opcode.customCode.decode("utf-8", "replace") if opcode.customCode else "?"
        return f"{CUSTOM_PREFIX}{custom}"
    return BUILTIN_OP_NAMES.get(code, f"BUILTIN_{code}")


def type_name(tensor_type: int) -> str:
    return _TYPE_NAMES.get(tensor_type, f"TYPE_{tensor_type}")


def numpy_dtype(tensor_type: int) -> np.dtype:
    """The numpy dtype a runtime hands out for this tensor type (storage dtype for sub-byte types)."""
    return _NUMPY_DTYPES.get(type_name(tensor_type), np.dtype(np.object_))


def buffer_bytes(model: schema.ModelT, buffer_index: int) -> int:
    """Size of a buffer's constant data, 0 when the tensor is not a constant."""
    if not model.buffers or not 0 <= buffer_index < len(model.buffers):
        return 0
    buffer = model.buffers[buffer_index]
    if buffer.data is not None and len(buffer.data) > 0:
        return len(buffer.data)
    if buffer.offset > 1:
        return int(buffer.size)
    return 0


def tensor_name(tensor: schema.TensorT) -> str:
    return tensor.name.decode("utf-8", "replace") if tensor.name else ""


def tensor_shape(tensor: schema.TensorT) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()
