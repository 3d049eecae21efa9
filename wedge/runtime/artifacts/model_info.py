"""What wedge knows about a model file without running it: the ModelInfo record.

Format readers (onnx_info, tflite_info) fill ModelInfo; the CLI and board checks only read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wedge.runtime.types import TensorSpec


@dataclass(frozen=True)
class ModelInfo:
    """A model file's interface, size, operators and compute, as read from the file."""

    path: str
    format: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    op_histogram: dict[str, int]
    param_count: int
    macs: int
    weight_bytes: int
    opset: int | None
    quantized: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, strings and numbers only)."""
        return {
            "path": self.path,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "op_histogram": dict(self.op_histogram),
            "param_count": self.param_count,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes,
            "opset": self.opset,
            "quantized": self.quantized,
            "notes": list(self.notes),
        }


def histogram(op_names: list[str]) -> dict[str, int]:
    """Op counts, most frequent first, ties by name, so tables read the same on every run."""
    counts: dict[str, int] = {}
    for name in op_names:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
