"""The board's model runtime: the booted model in TFLite-Micro with the board's arena, and its boot self-test.

The self-test loads the model and runs one inference on inputs at their zero point; a model that cannot be
loaded, allocated or run fails it, and the board then does not keep it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from wedge.errors import first_line
from wedge.firmware.image.model_image import ModelImage
from wedge.runtime.engines import Engine, EngineError, open_engine


@dataclass(frozen=True)
class SelfTest:
    """The outcome of the boot self-test; `reason` says why it failed."""

    passed: bool
    reason: str | None
    duration_us: int


class ModelRuntime:
    """A booted model held open in TFLM, ready for the always-on loop."""

    def __init__(self, image: ModelImage, engine: Engine) -> None:
        self.image = image
        self.engine = engine

    def close(self) -> None:
        self.engine.close()


def _zero_point_inputs(engine: Engine) -> dict[str, np.ndarray]:
    feeds = {}
    for spec in engine.inputs:
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
        fill = spec.quant.zero_points[0] if spec.quant is not None and np.dtype(spec.dtype).kind in "iu" else 0
        feeds[spec.name] = np.full(shape, fill, dtype=spec.dtype)
    return feeds


def _tensor_bytes(image: ModelImage) -> int:
    total = 0
    for tensor in image.manifest.inputs + image.manifest.outputs:
        count = 1
        for dim in tensor.shape:
            count *= max(int(dim), 1)
        try:
            itemsize = np.dtype(tensor.dtype).itemsize
        except TypeError:
            itemsize = 4
        total += count * itemsize
    return total


def precheck(image: ModelImage, arena_bytes: int, registered_ops: frozenset[str] | None) -> str | None:
    """What the firmware checks before it hands a model to the interpreter: ops it registered, the manifest's
    tensors against its arena (a model declaring a 2^31-element input must not reach AllocateTensors)."""
    ops = image.manifest.ops
    if registered_ops is not None and ops is not None:
        missing = sorted(set(ops) - registered_ops)
        if missing:
            return f"self-test failed: the firmware registers no kernel for {', '.join(missing)}"
    needed = _tensor_bytes(image)
    if needed > arena_bytes:
        return (f"self-test failed: its input and output tensors alone take {needed:,} bytes, "
                f"more than the {arena_bytes:,}-byte arena")
    return None


def start_runtime(image: ModelImage, arena_bytes: int,
                  registered_ops: frozenset[str] | None = None) -> tuple[ModelRuntime | None, SelfTest]:
    """Load `image` into TFLM with `arena_bytes` and self-test it; the runtime is None when the test failed."""
    started = time.perf_counter()
    refused = precheck(image, arena_bytes, registered_ops)
    if refused is not None:
        return None, SelfTest(False, refused, int((time.perf_counter() - started) * 1e6))
    engine: Engine | None = None
    try:
        engine = open_engine(image.parts.body, "tflm", arena_bytes=arena_bytes)
        outputs = engine.run(_zero_point_inputs(engine))
        for name, value in outputs.items():
            if np.asarray(value).dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise EngineError(f"output {name!r} is not finite")
    except EngineError as exc:
        if engine is not None:
            engine.close()
        elapsed = int((time.perf_counter() - started) * 1e6)
        return None, SelfTest(False, f"self-test failed: {first_line(exc)}", elapsed)
    elapsed = int((time.perf_counter() - started) * 1e6)
    return ModelRuntime(image, engine), SelfTest(True, None, elapsed)
