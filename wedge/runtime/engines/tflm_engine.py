"""The TFLite-Micro backend: the real TFLM kernels (tflite-micro package) in an arena of a given size.

What runs here runs on a board's TFLM, so the arena size is required, as it is on the device.

Caution: TFLM reports an arena that is too small by raising, which becomes an EngineError here, but an
arena too small for the interpreter's own allocator objects makes the native code crash the whole
process. Arenas under MIN_ARENA_BYTES are refused for that reason; that floor is no guarantee for
every model, so find a model's arena need in a subprocess, never in the caller's process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from wedge.errors import first_line
from wedge.runtime.artifacts.tflite_flatbuffer import int_list, op_name, read_tflite, tensor_name
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported
from wedge.runtime.engines.base import Engine
from wedge.runtime.engines.litert_engine import quant_from_details
from wedge.runtime.engines.source import ModelSource, describe_source, load_bytes
from wedge.runtime.types import ArtifactError, EngineError, TensorSpec

# With tflite-micro 2025-26 builds, arenas below about 400 bytes crash (segfault) while placing the
# allocator's own objects; from there up a shortfall raises. 1 KiB is below what even a one-op model needs.
MIN_ARENA_BYTES: Final = 1024


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise EngineError("TFLite-Micro is not installed: pip install tflite-micro") from None
    return runtime


def _spec(details: Mapping[str, Any], name: str) -> TensorSpec:
    return TensorSpec(
        name=name,
        shape=tuple(int(d) for d in details["shape"]),
        dtype=np.dtype(details["dtype"]),
        quant=quant_from_details(details),
    )


class TflmEngine(Engine):
    """A .tflite model in the TFLite-Micro interpreter, with an arena of `arena_bytes`."""

    kind = "tflm"

    def __init__(self, model: ModelSource, *, arena_bytes: int) -> None:
        super().__init__()
        if arena_bytes < MIN_ARENA_BYTES:
            raise EngineError(
                f"the TFLM arena of {arena_bytes} bytes is too small: TFLM needs at least {MIN_ARENA_BYTES} bytes"
            )
        runtime = _runtime()
        self._name = describe_source(model)
        content = load_bytes(model)
        # Malformed bytes or a missing kernel must be caught here: TFLM reports both as a failed
        # allocation (indistinguishable from a small arena), and some malformed files crash it.
        try:
            flatbuffer = read_tflite(content, self._name)
        except ArtifactError as exc:
            raise EngineError(str(exc)) from exc
        unsupported = tflm_unsupported(
            op_name(flatbuffer, int(op.opcodeIndex)) for sg in flatbuffer.subgraphs for op in sg.operators or ()
        )
        if unsupported:
            raise EngineError(f"TFLite-Micro has no kernel for {', '.join(unsupported)} in {self._name}")
        try:
            self._interpreter = runtime.Interpreter.from_bytes(content, arena_size=arena_bytes)
        except RuntimeError as exc:
            raise EngineError(
                f"the TFLM arena of {arena_bytes} bytes is too small for {self._name} ({first_line(exc)})"
            ) from exc
        main = flatbuffer.subgraphs[0]
        input_names = [tensor_name(main.tensors[int(i)]) for i in int_list(main.inputs)]
        output_names = [tensor_name(main.tensors[int(i)]) for i in int_list(main.outputs)]
        # TFLM's details carry no names; the flatbuffer's are the ones LiteRT reports too.
        self._inputs = tuple(
            _spec(self._interpreter.get_input_details(i), name) for i, name in enumerate(input_names)
        )
        self._outputs = tuple(
            _spec(self._interpreter.get_output_details(i), name) for i, name in enumerate(output_names)
        )
        self.arena_bytes = arena_bytes

    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        try:
            for index, spec in enumerate(self._inputs):
                self._interpreter.set_input(np.ascontiguousarray(feeds[spec.name]), index)
            self._interpreter.invoke()
            return [np.array(self._interpreter.get_output(i), copy=True) for i in range(len(self._outputs))]
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"TFLM failed to run {self._name}: {first_line(exc)}") from exc

    def _release(self) -> None:
        del self._interpreter
