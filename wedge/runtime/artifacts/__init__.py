"""Model artifacts: what a .onnx or .tflite file holds, read without running it.

`inspect_model(path)` picks the reader by extension and returns a ModelInfo.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from wedge.runtime.artifacts.board_fit import SlotFit, slot_fit
from wedge.runtime.artifacts.model_info import ModelInfo
from wedge.runtime.artifacts.onnx_info import onnx_info
from wedge.runtime.artifacts.tflite_info import tflite_info
from wedge.runtime.types import ArtifactError

_READERS: Final[dict[str, Callable[[Path, bytes], ModelInfo]]] = {
    ".onnx": onnx_info,
    ".tflite": tflite_info,
}


def inspect_model(path: str | Path) -> ModelInfo:
    """Read the model at `path` (.onnx or .tflite); bad input raises ArtifactError with a one-line message."""
    model_path = Path(path)
    reader = _READERS.get(model_path.suffix.lower())
    if not model_path.exists():
        raise ArtifactError(f"model file not found: {model_path}")
    if not model_path.is_file():
        raise ArtifactError(f"model path is not a file: {model_path}")
    if reader is None:
        raise ArtifactError(
            f"unknown model format {model_path.suffix or '(no extension)'!r} for {model_path.name}: "
            f"expected {' or '.join(_READERS)}"
        )
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {model_path}: {exc.strerror or exc}") from exc
    if not data:
        raise ArtifactError(f"{model_path.name} is empty")
    return reader(model_path, data)


__all__ = ["ArtifactError", "ModelInfo", "SlotFit", "inspect_model", "slot_fit"]
