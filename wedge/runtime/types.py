"""The runtime's vocabulary: tensor specs, quantization parameters, and the runtime's error types.

Every layer above (artifacts, engines, quantize, firmware, hil) takes these from here; this module imports
nothing of wedge but its errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wedge.errors import WedgeError


class EngineError(WedgeError):
    """A model cannot be opened or run by an inference engine."""


class ArtifactError(WedgeError):
    """A model file is missing, of an unknown format, or not a valid model."""


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
