"""Inference engines: onnxruntime, LiteRT and TFLite-Micro behind one small interface.

`open_engine(path)` picks the runtime by extension; backends are imported only when opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from wedge.runtime.engines.base import Engine
from wedge.runtime.engines.source import ModelSource
from wedge.runtime.types import EngineError, QuantParams, TensorSpec

ENGINE_KINDS: Final = ("onnxruntime", "litert", "tflm")

_KIND_BY_SUFFIX: Final[dict[str, str]] = {".onnx": "onnxruntime", ".tflite": "litert"}


def _auto_kind(model: ModelSource) -> str:
    if isinstance(model, bytes):
        raise EngineError("cannot guess the engine for in-memory model bytes: pass kind=")
    suffix = Path(model).suffix.lower()
    kind = _KIND_BY_SUFFIX.get(suffix)
    if kind is None:
        raise EngineError(
            f"no engine for {suffix or 'a file without extension'!r} ({Path(model).name}): "
            f"expected {' or '.join(_KIND_BY_SUFFIX)}"
        )
    return kind


def open_engine(
    path: ModelSource,
    kind: str = "auto",
    *,
    arena_bytes: int | None = None,
    threads: int | None = None,
) -> Engine:
    """Load a model (a path, or its bytes with an explicit kind) into an engine.

    kind: "auto" (.onnx -> onnxruntime, .tflite -> litert), "onnxruntime", "litert" or "tflm".
    arena_bytes is required by tflm and ignored by the host runtimes; threads is ignored by tflm.
    """
    chosen = _auto_kind(path) if kind == "auto" else kind
    if chosen == "onnxruntime":
        from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, threads=threads)
    if chosen == "litert":
        from wedge.runtime.engines.litert_engine import LiteRtEngine

        return LiteRtEngine(path, threads=threads)
    if chosen == "tflm":
        if arena_bytes is None:
            raise EngineError("the tflm engine needs an arena size: pass arena_bytes")
        from wedge.runtime.engines.tflm_engine import TflmEngine

        return TflmEngine(path, arena_bytes=arena_bytes)
    raise EngineError(f"unknown engine kind {kind!r}: expected auto or one of {', '.join(ENGINE_KINDS)}")


__all__ = ["ENGINE_KINDS", "Engine", "EngineError", "QuantParams", "TensorSpec", "open_engine"]
