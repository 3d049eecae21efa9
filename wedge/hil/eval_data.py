"""The eval set as the device sees it: samples from an .npz (ONNX layout, floats) laid out and quantized per input.

An input array is used as is when its shape matches the .tflite input, transposed channel-first to channel-last
(as the TFLite export lays inputs out) when that matches, or reshaped when only size-1 dimensions differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from wedge.hil.errors import EvalDataError
from wedge.runtime.types import TensorSpec

LABELS_KEY: Final[str] = "labels"


@dataclass(frozen=True)
class EvalSet:
    """`feeds[i]` maps input names to one sample (batch 1, model dtype); `labels` when the file has them."""

    feeds: tuple[dict[str, np.ndarray], ...]
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.feeds)

    def input_bytes(self, index: int, specs: tuple[TensorSpec, ...]) -> bytes:
        """The sample as the DUT's `db` buffer: inputs in model order, raw bytes."""
        return b"".join(np.ascontiguousarray(self.feeds[index][spec.name]).tobytes() for spec in specs)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _laid_out(array: np.ndarray, spec: TensorSpec, source: str) -> np.ndarray:
    target = tuple(int(d) for d in spec.shape[1:])
    sample = array.shape[1:]
    if sample == target:
        return array
    if array.ndim >= 3:
        channel_last = np.moveaxis(array, 1, -1)
        if channel_last.shape[1:] == target:
            return channel_last
        if _squeezed(channel_last.shape[1:]) == _squeezed(target) and _squeezed(sample) != _squeezed(target):
            return channel_last.reshape((array.shape[0], *target))
    if _squeezed(sample) == _squeezed(target):
        return array.reshape((array.shape[0], *target))
    raise EvalDataError(f"{source}: samples of shape {list(sample)} do not fit input {spec.name!r} of shape "
                        f"{list(target)} (neither as is nor channel-last)")


def _array_for(data: dict[str, np.ndarray], spec: TensorSpec, count: int, source: str) -> np.ndarray:
    if spec.name in data:
        return data[spec.name]
    arrays = {k: v for k, v in data.items() if k != LABELS_KEY}
    if count == 1 and len(arrays) == 1:
        return next(iter(arrays.values()))
    raise EvalDataError(f"{source} has no array named {spec.name!r} (it has {', '.join(sorted(arrays)) or 'none'})")


def load_eval(path: str | Path, specs: tuple[TensorSpec, ...], max_samples: int | None = None) -> EvalSet:
    """Read `path` (.npz) for a model with inputs `specs`; EvalDataError when it does not match the model."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: np.asarray(npz[k]) for k in npz.files}
    except FileNotFoundError:
        raise EvalDataError(f"eval set not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise EvalDataError(f"{path.name} is not a readable .npz: {exc}") from None
    per_input: dict[str, np.ndarray] = {}
    for spec in specs:
        array = _laid_out(_array_for(data, spec, len(specs), path.name), spec, path.name)
        if np.dtype(spec.dtype).kind in "iu" and array.dtype.kind == "f":
            if spec.quant is None:
                raise EvalDataError(f"input {spec.name!r} is {spec.dtype} without quantization: cannot feed floats")
            array = spec.quant.quantize(array, spec.dtype)
        per_input[spec.name] = array.astype(spec.dtype)
    counts = {len(a) for a in per_input.values()}
    if len(counts) != 1:
        raise EvalDataError(f"{path.name}: inputs have different sample counts {sorted(counts)}")
    count = counts.pop()
    labels = data.get(LABELS_KEY)
    if labels is not None and len(labels) != count:
        raise EvalDataError(f"{path.name}: {len(labels)} labels for {count} samples")
    if max_samples is not None:
        count = min(count, max_samples)
        labels = None if labels is None else labels[:count]
    if count == 0:
        raise EvalDataError(f"{path.name} holds no samples")
    feeds = tuple({name: a[i : i + 1] for name, a in per_input.items()} for i in range(count))
    return EvalSet(feeds, None if labels is None else np.asarray(labels).astype(np.int64))
