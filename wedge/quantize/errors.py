"""The quantization pipeline's exception family.

Each class names the stage that failed; the message is one line a user can act on.
"""

from __future__ import annotations

from wedge.errors import WedgeError

# A labels file that cannot be read, or labels that do not match the model's classes: one error wherever labels
# are read (images and the virtual board read them too, below the pipeline).
from wedge.runtime.artifacts.labels import LabelsError as LabelsError


class QuantizeError(WedgeError):
    """The quantization pipeline could not go on."""


class ModelLoadError(QuantizeError):
    """The model file is missing, not ONNX, truncated, or uses ops we cannot run."""


class CalibrationDataError(QuantizeError):
    """Calibration or evaluation data does not match the model or is unusable."""


class OutputError(QuantizeError):
    """The output folder cannot be written."""

