"""Tensors in and out of .safetensors files with numpy: fp32, fp16 and bf16 (through ml_dtypes) in, fp32 out to
the caller; a damaged file is one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

import ml_dtypes  # registers numpy's bfloat16, which safetensors' numpy reader needs for bf16 tensors
import numpy as np
from numpy.typing import NDArray

from wedge.errors import first_line
from wedge.quantize.lm.errors import LmError

FLOAT_DTYPES: Final = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
# safetensors' dtype codes -> the names config.json's torch_dtype uses
DTYPE_NAMES: Final = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


class SafetensorsFile:
    """One open .safetensors file: its tensor names and each tensor as fp32, read on demand."""

    def __init__(self, path: Path, error: type[LmError]) -> None:
        from safetensors import safe_open

        self.path = Path(path)
        self._error = error
        try:
            self._handle = safe_open(str(path), framework="numpy")
            self._keys = list(self._handle.keys())
            self.metadata: Mapping[str, str] = self._handle.metadata() or {}
        except Exception as exc:  # the Rust reader raises SafetensorError, OSError and ValueError alike
            raise error(f"{path} is not a readable safetensors file: {first_line(exc)}") from None

    def keys(self) -> list[str]:
        return list(self._keys)

    def dtype(self, key: str) -> str:
        code = str(self._handle.get_slice(key).get_dtype())
        return DTYPE_NAMES.get(code, code.lower())

    def tensor(self, key: str) -> NDArray[np.float32]:
        try:
            array = self._handle.get_tensor(key)
        except Exception as exc:
            raise self._error(f"{self.path}: tensor {key} cannot be read: {first_line(exc)}") from None
        if array.dtype.kind != "f" and array.dtype != ml_dtypes.bfloat16:
            raise self._error(f"{self.path}: tensor {key} is {array.dtype}, not floating point")
        return np.ascontiguousarray(array.astype(np.float32))


def iter_tensors(files: list[Path], error: type[LmError],
                 on_file: Callable[[Path], None] | None = None) -> Iterator[tuple[str, str, NDArray[np.float32]]]:
    """(name, stored dtype, fp32 array) of every tensor in `files`, one file open at a time."""
    for path in files:
        handle = SafetensorsFile(path, error)
        for key in handle.keys():
            yield key, handle.dtype(key), handle.tensor(key)
        if on_file is not None:
            on_file(path)


def write_safetensors(tensors: Mapping[str, NDArray[np.floating]], path: Path, dtype: str = "float32") -> Path:
    """Write `tensors` cast to `dtype` (float32, float16 or bfloat16) as PyTorch-flavoured safetensors."""
    from safetensors.numpy import save_file

    target = FLOAT_DTYPES[dtype]
    save_file({name: np.ascontiguousarray(array.astype(target)) for name, array in tensors.items()}, str(path),
              metadata={"format": "pt"})
    return path
