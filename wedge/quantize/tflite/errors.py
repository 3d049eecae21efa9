"""The TFLite export's exception: a model the lowering cannot turn into an int8 .tflite, or one that drifts.

Messages name the node, the op and what the user can do, on one line.
"""

from __future__ import annotations

from wedge.quantize.errors import QuantizeError


class ExportError(QuantizeError):
    """The int8 QDQ ONNX cannot become a valid int8 TFLite model."""


class ExportDriftError(ExportError):
    """The .tflite runs, but its outputs drift from onnxruntime's on the int8 ONNX past the validation bounds."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem
