"""Stage 3: activation ranges from calibration data with onnxruntime's calibrators, streamed in chunks.

ORT's histogram calibrators keep every activation of every sample they are fed; feeding them chunk by chunk
bounds memory to one chunk while their histograms merge across chunks.
"""

from __future__ import annotations

import enum
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator
from onnxruntime.quantization.calibrate import TensorsData

from wedge.errors import first_line
from wedge.quantize.calibration import Batch, SampleSet
from wedge.quantize.errors import QuantizeError
from wedge.quantize.plan import ONNX_OP_TYPES
from wedge.runtime.quiet import quiet_onnxruntime

# Samples per collect_data call: histogram calibrators hold every activation of a call, so this bounds
# their memory; histograms merge across calls, so results do not depend on it.
CHUNK_SAMPLES: Final = 8


class Method(str, enum.Enum):
    """Calibration methods wedge searches over (onnxruntime's; Distribution is for float8, not int8)."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"

    @property
    def ort(self) -> CalibrationMethod:
        return {
            Method.MINMAX: CalibrationMethod.MinMax,
            Method.PERCENTILE: CalibrationMethod.Percentile,
            Method.ENTROPY: CalibrationMethod.Entropy,
        }[self]


DEFAULT_METHODS: Final = (Method.MINMAX, Method.PERCENTILE, Method.ENTROPY)

# Percentile keeps the top 0.001% out: for int8 that clips only the rarest outliers.
_EXTRA_OPTIONS: Final = {
    Method.MINMAX: {"symmetric": False},
    Method.PERCENTILE: {"symmetric": False, "percentile": 99.999, "num_bins": 2048},
    Method.ENTROPY: {"symmetric": False, "num_bins": 512, "num_quantized_bins": 128},
}


class _BatchReader(CalibrationDataReader):
    """Hands ORT one batch at a time from an iterator."""

    def __init__(self, batches: Iterator[Batch]) -> None:
        self._batches = batches

    def get_next(self) -> Batch | None:
        return next(self._batches, None)


def calibrate(
    model_path: Path,
    samples: SampleSet,
    method: Method,
    *,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    op_types: Sequence[str] = ONNX_OP_TYPES,
) -> TensorsData:
    """Activation ranges of `model_path` over `samples` with `method` for the tensors of `op_types` nodes;
    `on_batch(n)` reports progress."""
    with tempfile.TemporaryDirectory(prefix="wedge-calib-") as tmp, quiet_onnxruntime():
        try:
            calibrator = create_calibrator(
                model_path,
                list(op_types),
                augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=method.ort,
                extra_options=dict(_EXTRA_OPTIONS[method]),
            )
        except Exception as exc:
            raise QuantizeError(f"cannot set up {method.value} calibration: {first_line(exc)}") from None
        chunk = max(1, CHUNK_SAMPLES // batch_size) * batch_size
        try:
            for start, stop in _chunks(len(samples), chunk, batch_size):
                calibrator.collect_data(_BatchReader(_counted(samples, start, stop, batch_size, on_batch)))
            ranges = calibrator.compute_data()
        except QuantizeError:
            raise
        except Exception as exc:
            raise QuantizeError(f"{method.value} calibration failed: {first_line(exc)}") from None
        finally:
            del calibrator
    return ranges


def _chunks(total: int, chunk: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """Sample ranges for one collect_data call each; a short last batch gets a call of its own.

    ORT's histogram collector stacks one call's batches into one array, so they must all be the same size.
    """
    full = total - total % batch_size
    for start in range(0, full, chunk):
        yield start, min(start + chunk, full)
    if full < total:
        yield full, total


def _counted(samples: SampleSet, start: int, stop: int, batch_size: int,
             on_batch: Callable[[int], None] | None) -> Iterator[Batch]:
    for lo in range(start, stop, batch_size):
        hi = min(lo + batch_size, stop)
        yield samples.batch(lo, hi)
        if on_batch is not None:
            on_batch(hi - lo)
