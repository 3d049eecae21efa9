"""The onnxruntime backend: runs an ONNX model (a path or its bytes) on the CPU provider.

ORT's own log is raised to errors-only so a user sees wedge's messages, not the runtime's warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from wedge.errors import first_line
from wedge.runtime.engines.base import Engine
from wedge.runtime.engines.source import ModelSource, describe_source, existing_path
from wedge.runtime.types import Dim, EngineError, TensorSpec

_ORT_ERRORS_ONLY: Final = 3

# ORT reports element types as strings; these are the ones numpy can hold.
_ORT_DTYPES: Final[dict[str, np.dtype]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(uint32)": np.dtype(np.uint32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(uint64)": np.dtype(np.uint64),
    "tensor(bool)": np.dtype(np.bool_),
    "tensor(string)": np.dtype(np.object_),
}


def _spec(arg: Any, *, is_input: bool) -> TensorSpec:
    dtype = _ORT_DTYPES.get(arg.type)
    if dtype is None:
        if is_input:
            raise EngineError(f"input {arg.name!r} has type {arg.type}, which wedge cannot feed from numpy")
        # Non-tensor outputs (sklearn's ZipMap gives a sequence of maps) still run; ORT returns lists.
        dtype = np.dtype(np.object_)
    shape: tuple[Dim, ...] = tuple(d if isinstance(d, int | str) else None for d in (arg.shape or ()))
    return TensorSpec(name=arg.name, shape=shape, dtype=dtype, quant=None)


def _ort_source(path: Path) -> bytes | str:
    """The path for onnxruntime, or the file's bytes when the path is not UTF-8 (onnxruntime takes UTF-8 paths
    only; a model with external data then cannot find it, which onnxruntime says)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return path.read_bytes()
    return text


class OnnxRuntimeEngine(Engine):
    """An ONNX model in an onnxruntime InferenceSession on the CPU execution provider."""

    kind = "onnxruntime"

    def __init__(self, model: ModelSource, *, threads: int | None = None, simulate_int8: bool = False) -> None:
        """`simulate_int8` keeps QuantizeLinear/DequantizeLinear pairs as float math instead of fusing them
        into ORT's int8 kernels: the results are what an int32-accumulating MCU kernel computes, whereas
        ORT's x86 u8s8 kernels saturate intermediate sums on CPUs without VNNI."""
        super().__init__()
        import onnxruntime as ort

        if threads is not None and threads < 1:
            raise EngineError(f"threads must be at least 1, got {threads}")
        self._name = describe_source(model)
        options = ort.SessionOptions()
        options.log_severity_level = _ORT_ERRORS_ONLY
        if threads is not None:
            options.intra_op_num_threads = threads
        if simulate_int8:
            # No graph optimization at all: the extended level fuses QDQ into QLinear kernels, and even the basic
            # level drops the Q/DQ pair after a float op between int8 ones (a --keep-float island).
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        content: bytes | str = model if isinstance(model, bytes) else _ort_source(existing_path(model))
        try:
            self._session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own pybind exception types for every load failure
            raise EngineError(f"onnxruntime cannot load {self._name}: {first_line(exc)}") from exc
        self._inputs = tuple(_spec(arg, is_input=True) for arg in self._session.get_inputs())
        self._outputs = tuple(_spec(arg, is_input=False) for arg in self._session.get_outputs())

    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        try:
            return self._session.run([spec.name for spec in self._outputs], dict(feeds))
        except Exception as exc:
            raise EngineError(f"onnxruntime failed to run {self._name}: {first_line(exc)}") from exc

    def _release(self) -> None:
        del self._session

