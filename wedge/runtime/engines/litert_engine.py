"""The LiteRT backend: runs a .tflite model in ai-edge-litert's Interpreter (tflite-runtime as a fallback).

LiteRT models are built batch-1; the Engine base loops over larger batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wedge.errors import first_line
from wedge.runtime.engines.base import Engine
from wedge.runtime.engines.source import ModelSource, describe_source, load_bytes
from wedge.runtime.quiet import quiet_native_stderr
from wedge.runtime.types import EngineError, QuantParams, TensorSpec


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        pass
    else:
        return Interpreter
    # tflite-runtime is the predecessor with the same API; accepted only when LiteRT is missing.
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        raise EngineError("LiteRT is not installed: pip install ai-edge-litert") from None
    return Interpreter


def quant_from_details(details: Mapping[str, Any]) -> QuantParams | None:
    """QuantParams from a LiteRT/TFLM tensor-details dict, or None for a float tensor."""
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", ()), dtype=np.float64).ravel()
    if scales.size == 0:
        return None
    zero_points = np.asarray(params.get("zero_points", ()), dtype=np.int64).ravel()
    if zero_points.size == 0:
        zero_points = np.zeros(scales.size, dtype=np.int64)
    return QuantParams(
        scales=tuple(float(s) for s in scales),
        zero_points=tuple(int(z) for z in zero_points),
        axis=int(params.get("quantized_dimension", 0)),
    )


def _spec(details: Mapping[str, Any], name: str | None = None) -> TensorSpec:
    return TensorSpec(
        name=name if name is not None else str(details["name"]),
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]),
        quant=quant_from_details(details),
    )


class LiteRtEngine(Engine):
    """A .tflite model in a LiteRT Interpreter with its tensors allocated."""

    kind = "litert"

    def __init__(self, model: ModelSource, *, threads: int | None = None) -> None:
        super().__init__()
        if threads is not None and threads < 1:
            raise EngineError(f"threads must be at least 1, got {threads}")
        interpreter_class = _interpreter_class()
        self._name = describe_source(model)
        content = load_bytes(model)
        try:
            with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on every load
                self._interpreter = interpreter_class(model_content=content, num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"LiteRT cannot load {self._name}: {first_line(exc)}") from exc
        input_details = self._interpreter.get_input_details()
        output_details = self._interpreter.get_output_details()
        self._input_index = {str(d["name"]): int(d["index"]) for d in input_details}
        self._output_index = [int(d["index"]) for d in output_details]
        self._inputs = tuple(_spec(d) for d in input_details)
        self._outputs = tuple(_spec(d) for d in output_details)

    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        try:
            for name, array in feeds.items():
                self._interpreter.set_tensor(self._input_index[name], np.ascontiguousarray(array))
            self._interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"LiteRT failed to run {self._name}: {first_line(exc)}") from exc
        return [self._interpreter.get_tensor(index) for index in self._output_index]

    def _release(self) -> None:
        del self._interpreter
