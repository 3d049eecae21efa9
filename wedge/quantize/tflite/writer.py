"""Writes a TFLite flatbuffer with the object API generated from the schema shipped in ai-edge-litert.

Lowering adds tensors and operators here by TFLite name; `to_bytes` packs ModelT with the TFL3 identifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.runtime.types import QuantParams

TFLITE_IDENTIFIER: Final = b"TFL3"
SCHEMA_VERSION: Final = 3
# TFLM reads weights and int32 biases in place; the TensorFlow converter aligns buffers to 16 bytes so
# that SIMD kernels (CMSIS-NN) may use aligned loads. The generated Pack aligns them to 1 byte only.
BUFFER_ALIGNMENT: Final = 16
# Op codes above this live only in `builtin_code`; older readers look at the deprecated int8 field.
_DEPRECATED_CODE_LIMIT: Final = 127

_TENSOR_TYPES: Final[dict[np.dtype, int]] = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.uint8): schema.TensorType.UINT8,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.int64): schema.TensorType.INT64,
}

# Op versions as the TensorFlow converter writes them for int8 kernels (readers pick kernels by version).
_OP_VERSIONS: Final[dict[str, int]] = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2,
    "SOFTMAX": 2, "LOGISTIC": 2, "TANH": 2, "ADD": 2, "MUL": 2, "CONCATENATION": 2, "PAD": 2, "PADV2": 2,
    "TRANSPOSE": 2, "MEAN": 2, "QUANTIZE": 2, "DEQUANTIZE": 2, "RELU": 2, "RELU6": 2, "MAXIMUM": 2,
    "MINIMUM": 2, "SPLIT": 2, "LEAKY_RELU": 2, "SUB": 2, "DIV": 2, "GATHER": 2, "SLICE": 2, "STRIDED_SLICE": 2,
    "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3, "TRANSPOSE_CONV": 3, "BATCH_MATMUL": 1,
}  # fmt: skip


class _AlignedBufferT(schema.BufferT):  # type: ignore[misc]
    """A buffer whose data starts on a BUFFER_ALIGNMENT boundary of the finished file."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data = None
        if self.data is not None and len(self.data):
            raw = np.ascontiguousarray(self.data, dtype=np.uint8)
            # Flatbuffers are built back to front: pad now so the bytes written next end up aligned.
            builder.Prep(BUFFER_ALIGNMENT, len(raw))
            data = builder.CreateNumpyVector(raw)
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return int(schema.BufferEnd(builder))


@dataclass(frozen=True)
class TensorRecord:
    """What the writer knows of one tensor, for callers that need shapes and params back."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quant: QuantParams | None
    constant: bool


class TfliteWriter:
    """One subgraph under construction: tensors, constant buffers and operators, in execution order."""

    def __init__(self) -> None:
        self._tensors: list[schema.TensorT] = []
        self._records: list[TensorRecord] = []
        self._buffers: list[schema.BufferT] = [_AlignedBufferT()]  # buffer 0: the empty sentinel
        self._opcodes: dict[str, int] = {}
        self._opcode_objects: list[schema.OperatorCodeT] = []
        self._operators: list[schema.OperatorT] = []
        self._op_names: list[str] = []
        self._names: set[str] = set()
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, index: int) -> TensorRecord:
        return self._records[index]

    @property
    def op_names(self) -> list[str]:
        """Operator names in execution order."""
        return list(self._op_names)

    def add_tensor(self, name: str, shape: Sequence[int], dtype: Any, quant: QuantParams | None = None,
                   data: np.ndarray | None = None) -> int:
        """A new tensor (a constant when `data` is given); returns its index. Names are made unique."""
        np_dtype = np.dtype(dtype)
        if np_dtype not in _TENSOR_TYPES:
            raise ValueError(f"TFLite export has no tensor type for {np_dtype}")
        tensor = schema.TensorT()
        tensor.name = self._unique(name).encode("utf-8")
        tensor.shape = [int(d) for d in shape]
        tensor.type = _TENSOR_TYPES[np_dtype]
        tensor.hasRank = True
        if quant is not None:
            params = schema.QuantizationParametersT()
            params.scale = [float(s) for s in quant.scales]
            params.zeroPoint = [int(z) for z in quant.zero_points]
            params.quantizedDimension = int(quant.axis) if quant.per_axis else 0
            tensor.quantization = params
        if data is not None:
            array = np.ascontiguousarray(data, dtype=np_dtype)
            if array.shape != tuple(tensor.shape) and array.size != int(np.prod(tensor.shape)):
                raise ValueError(f"constant {name!r}: {array.size} values for shape {list(tensor.shape)}")
            buffer = _AlignedBufferT()
            buffer.data = np.frombuffer(array.astype(array.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8)
            self._buffers.append(buffer)
            tensor.buffer = len(self._buffers) - 1
        else:
            tensor.buffer = 0  # activations have no data: all of them share the empty sentinel
        self._tensors.append(tensor)
        index = len(self._tensors) - 1
        self._records.append(TensorRecord(index, tensor.name.decode(), tuple(tensor.shape), np_dtype, quant,
                                          data is not None))
        return index

    def add_op(self, op: str, inputs: Sequence[int], outputs: Sequence[int], options: Any = None) -> None:
        """Append operator `op` (a BuiltinOperator name such as CONV_2D); -1 marks an omitted input."""
        code = getattr(schema.BuiltinOperator, op)
        if op not in self._opcodes:
            opcode = schema.OperatorCodeT()
            opcode.builtinCode = code
            opcode.deprecatedBuiltinCode = min(code, _DEPRECATED_CODE_LIMIT)
            opcode.version = _OP_VERSIONS.get(op, 1)
            self._opcodes[op] = len(self._opcodes)
            self._opcode_objects.append(opcode)
        operator = schema.OperatorT()
        operator.opcodeIndex = self._opcodes[op]
        operator.inputs = [int(i) for i in inputs]
        operator.outputs = [int(i) for i in outputs]
        if options is not None:
            # Option classes are named after their union member: Conv2DOptionsT -> BuiltinOptions.Conv2DOptions.
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__.removesuffix("T"))
            operator.builtinOptions = options
        self._operators.append(operator)
        self._op_names.append(op)

    def to_bytes(self, description: str, metadata: Mapping[str, bytes] | None = None) -> bytes:
        """The finished .tflite file; `metadata` entries (name -> bytes) each get a buffer of their own."""
        subgraph = schema.SubGraphT()
        subgraph.tensors = self._tensors
        subgraph.inputs = list(self.inputs)
        subgraph.outputs = list(self.outputs)
        subgraph.operators = self._operators
        subgraph.name = b"main"
        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = description.encode("utf-8")
        model.operatorCodes = self._opcode_objects
        model.subgraphs = [subgraph]
        model.buffers = list(self._buffers)
        model.metadata = []
        for name, data in (metadata or {}).items():
            buffer = _AlignedBufferT()
            buffer.data = np.frombuffer(data, dtype=np.uint8)
            entry = schema.MetadataT()
            entry.name, entry.buffer = name.encode(), len(model.buffers)
            model.buffers.append(buffer)
            model.metadata.append(entry)
        builder = flatbuffers.Builder(1024 + sum(len(b.data) for b in model.buffers if b.data is not None))
        builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
        return bytes(builder.Output())

    def rename(self, index: int, name: str) -> None:
        """Give tensor `index` the exact name `name` (model inputs and outputs keep their ONNX names)."""
        for other, tensor in enumerate(self._tensors):
            if other != index and tensor.name.decode() == name:
                self._rename(other, self._unique(f"{name}/inner"))
        self._names.discard(self._tensors[index].name.decode())
        self._names.add(name)
        self._rename(index, name)

    def _rename(self, index: int, name: str) -> None:
        self._tensors[index].name = name.encode("utf-8")
        record = self._records[index]
        self._records[index] = TensorRecord(record.index, name, record.shape, record.dtype, record.quant,
                                            record.constant)

    def _unique(self, name: str) -> str:
        candidate, count = name or "t", 1
        while candidate in self._names:
            count += 1
            candidate = f"{name}_{count}"
        self._names.add(candidate)
        return candidate
