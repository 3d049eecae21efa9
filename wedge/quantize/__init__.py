"""The int8 pipeline: load and preprocess, calibrate, quantize, evaluate, check the board fit, report.

Each stage is its own module; `pipeline.run_quantize` strings them together.
"""

from wedge.quantize.errors import CalibrationDataError, ModelLoadError, QuantizeError

__all__ = ["CalibrationDataError", "ModelLoadError", "QuantizeError"]
