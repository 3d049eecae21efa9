"""The engine interface shared by every runtime: tensor specs, quantization parameters, Engine.

Backends implement `_invoke` on exactly-shaped feeds; feed validation and batch looping live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from wedge.errors import WedgeError


class EngineError(WedgeError):
    """A model cannot be opened or run by an inference engine."""


Dim = int | str | None


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization `real = (q - zero_point) * scale`, per tensor or per slice along `axis`."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    def __post_init__(self) -> None:
        if not self.scales:
            raise EngineError("quantization parameters need at least one scale")
        if len(self.scales) != len(self.zero_points):
            raise EngineError(
                f"quantization parameters have {len(self.scales)} scales "
                f"but {len(self.zero_points)} zero points"
            )

    @property
    def per_axis(self) -> bool:
        return len(self.scales) > 1

    def _broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        scales = np.asarray(self.scales, dtype=np.float64)
        zero_points = np.asarray(self.zero_points, dtype=np.float64)
        if not self.per_axis:
            return scales.reshape(()), zero_points.reshape(())
        axis = self.axis if self.axis >= 0 else ndim + self.axis
        if not 0 <= axis < ndim:
            raise EngineError(f"quantization axis {self.axis} does not exist in a rank-{ndim} tensor")
        shape = [1] * ndim
        shape[axis] = len(self.scales)
        return scales.reshape(shape), zero_points.reshape(shape)

    def quantize(self, x: np.ndarray, dtype: Any) -> np.ndarray:
        """Real values to integers of `dtype`, rounding ties to even (as ONNX QuantizeLinear) and saturating."""
        target = np.dtype(dtype)
        if target.kind not in "iu":
            raise EngineError(f"cannot quantize to {target}: an integer dtype is needed")
        values = np.asarray(x, dtype=np.float64)
        scales, zero_points = self._broadcast(values.ndim)
        info = np.iinfo(target)
        q = np.rint(values / scales) + zero_points
        return np.clip(q, info.min, info.max).astype(target)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Integers back to float32 real values."""
        values = np.asarray(q)
        scales, zero_points = self._broadcast(values.ndim)
        return ((values.astype(np.float64) - zero_points) * scales).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "zero_points": list(self.zero_points), "axis": self.axis}


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, shape (symbolic dims by name, unknown as None), dtype, quantization."""

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype
    quant: QuantParams | None = None

    def shape_text(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": str(self.dtype),
            "quant": None if self.quant is None else self.quant.to_dict(),
        }


def _is_fixed(dim: Dim) -> bool:
    return isinstance(dim, int) and dim >= 0


class Engine(ABC):
    """A loaded model that runs feeds by input name and returns outputs by output name.

    Subclasses call `super().__init__()`, set `self._inputs` / `self._outputs` (the specs), and provide
    `_invoke` (one call whose feeds match the specs) and `_release` (free the runtime). When an input's batch dimension is
    fixed to 1 and a feed carries N > 1 samples, `run` loops over the samples and concatenates the
    outputs, because LiteRT and TFLM models are built batch-1.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._closed = False
        self._inputs: tuple[TensorSpec, ...] = ()
        self._outputs: tuple[TensorSpec, ...] = ()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @abstractmethod
    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Run once; feeds match the input specs exactly; return outputs in `self.outputs` order."""

    @abstractmethod
    def _release(self) -> None:
        """Free the runtime's resources; called once, by `close`."""

    def close(self) -> None:
        """Free the runtime; later `run` calls raise EngineError. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._release()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feeds`; the result is keyed by output name, in output order."""
        if self._closed:
            raise EngineError(f"the {self.kind} engine is closed")
        arrays, batch = self._validate(feeds)
        names = [spec.name for spec in self.outputs]
        if batch is None:
            results = self._invoke(arrays)
            return {name: np.asarray(out) for name, out in zip(names, results, strict=True)}
        per_sample: list[Sequence[np.ndarray]] = []
        for i in range(batch):
            sample = {
                name: (arr[i : i + 1] if self._loops_over(name) else arr) for name, arr in arrays.items()
            }
            per_sample.append(self._invoke(sample))
        return {
            name: _stack([np.asarray(outs[k]) for outs in per_sample])
            for k, name in enumerate(names)
        }

    def _loops_over(self, input_name: str) -> bool:
        spec = next(s for s in self.inputs if s.name == input_name)
        return bool(spec.shape) and spec.shape[0] == 1

    def _validate(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
        """Check names, dtypes and shapes; return the arrays and the loop count (None: no loop)."""
        expected = {spec.name: spec for spec in self.inputs}
        unknown = [name for name in feeds if name not in expected]
        if unknown:
            raise EngineError(
                f"unknown input {unknown[0]!r}; the model's inputs are: {', '.join(expected) or 'none'}"
            )
        missing = [name for name in expected if name not in feeds]
        if missing:
            raise EngineError(f"missing input {missing[0]!r}; the model's inputs are: {', '.join(expected)}")
        arrays: dict[str, np.ndarray] = {}
        loop_counts: set[int] = set()
        for name, spec in expected.items():
            arr = np.asarray(feeds[name])
            if arr.dtype != spec.dtype:
                raise EngineError(f"input {name!r} has dtype {arr.dtype}, the model expects {spec.dtype}")
            if arr.ndim != len(spec.shape):
                raise EngineError(
                    f"input {name!r} has shape {list(arr.shape)}, the model expects {spec.shape_text()}"
                )
            for axis, (got, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
                if not _is_fixed(want) or got == want:
                    continue
                if axis == 0 and want == 1 and got > 1:
                    loop_counts.add(got)
                    continue
                raise EngineError(
                    f"input {name!r} has shape {list(arr.shape)}, the model expects {spec.shape_text()}"
                )
            arrays[name] = arr
        if len(loop_counts) > 1:
            raise EngineError(f"inputs disagree on the batch size: {sorted(loop_counts)}")
        if not loop_counts:
            return arrays, None
        batch = loop_counts.pop()
        # Every batch-1 input must carry the same N samples, else samples would pair up wrongly.
        for name, arr in arrays.items():
            if self._loops_over(name) and arr.shape[0] != batch:
                raise EngineError(f"input {name!r} has {arr.shape[0]} samples, other inputs have {batch}")
        return arrays, batch

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stack(outputs: list[np.ndarray]) -> np.ndarray:
    if outputs[0].ndim == 0:
        return np.stack(outputs)
    return np.concatenate(outputs, axis=0)
