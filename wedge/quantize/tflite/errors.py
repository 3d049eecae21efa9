"""The TFLite export's exception: a model the lowering cannot turn into an int8 .tflite, or one that drifts.

Messages name the node, the op and what the user can do, on one line.
"""

from __future__ import annotations

from wedge.quantize.errors import QuantizeError


class ExportError(QuantizeError):
    """The int8 QDQ ONNX cannot become a valid int8 TFLite model."""
