"""Int8 TFLite export without TensorFlow: QDQ ONNX -> typed graph -> NHWC TFLite ops -> flatbuffer.

`export_tflite` also validates the file in LiteRT and TFLite-Micro and measures its TFLM arena.
"""

from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.export import ExportResult, export_tflite

__all__ = ["ExportError", "ExportResult", "export_tflite"]
