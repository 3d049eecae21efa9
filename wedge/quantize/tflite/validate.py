"""Runs an exported .tflite in LiteRT and in TFLite-Micro and compares it with onnxruntime on the QDQ model.

Outputs are compared as int8 codes on the ONNX output grid: identical share, largest difference in quanta,
top-1 agreement, and SQNR; an export that drifts past the bounds below fails with the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from wedge.quantize.evaluate import SQNR_CAP_DB, sqnr_db
from wedge.quantize.tflite.convert import IoBinding, LoweredModel
from wedge.runtime.engines import open_engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

# The kernels round differently from onnxruntime's float QDQ math: TFLM rescales with a fixed-point multiply
# that rounds twice (a quantum off for about 2^-(k+1) of the values when the multiplier is near 2^-k),
# LiteRT's XNNPACK rescales in float, and softmax/logistic/tanh use table approximations. The differences
# compound with depth. A layout, padding or bias mistake costs far more than these bounds allow.
MIN_SQNR_DB: Final = 15.0
MIN_TOP1_AGREEMENT_PCT: Final = 90.0
VALIDATION_RUNTIMES: Final = ("litert", "tflm")
DEFAULT_SAMPLES: Final = 64


@dataclass(frozen=True)
class RuntimeAgreement:
    """How one runtime's outputs of the .tflite compare with onnxruntime's on the QDQ model."""

    runtime: str
    samples: int
    identical_pct: float
    within_one_quantum_pct: float
    max_quanta_diff: int
    top1_agreement_pct: float | None
    sqnr_db: float
    invoke_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Validation:
    """The agreement of every runtime, and whether the export stays within the bounds."""

    samples: int
    source: str
    runtimes: tuple[RuntimeAgreement, ...]
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    def runtime(self, name: str) -> RuntimeAgreement:
        return next(r for r in self.runtimes if r.runtime == name)

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "source": self.source, "passed": self.passed,
                "bounds": {"min_sqnr_db": MIN_SQNR_DB, "min_top1_agreement_pct": MIN_TOP1_AGREEMENT_PCT},
                "runtimes": {r.runtime: r.to_dict() for r in self.runtimes}, "problems": list(self.problems)}


def synthetic_samples(lowered: LoweredModel, count: int = DEFAULT_SAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs spread over each input's whole int8 range, for validating without an eval set."""
    rng = np.random.default_rng(seed)
    samples: dict[str, np.ndarray] = {}
    for binding in lowered.inputs:
        codes = rng.integers(-128, 128, size=(count, *binding.onnx_shape[1:]))
        samples[binding.onnx_name] = binding.params.dequantize(codes).astype(np.float32)
    return samples


def _codes(binding: IoBinding, values: np.ndarray) -> np.ndarray:
    """Outputs as int8 codes on the binding's grid (exact: both sides hold dequantized codes)."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    return binding.params.quantize(values, np.int8).astype(np.int64)


def _classes(binding: IoBinding, inputs: Sequence[IoBinding]) -> bool:
    """Whether an output is class scores: [N, K > 1], and not shaped like an input (an autoencoder's)."""
    shape = binding.onnx_shape
    return len(shape) == 2 and shape[1] > 1 and all(tuple(shape) != tuple(i.onnx_shape) for i in inputs)


def _agreement(runtime: str, lowered: LoweredModel, reference: Mapping[str, np.ndarray],
               outputs: Mapping[str, np.ndarray], samples: int, invoke_ms: float) -> RuntimeAgreement:
    diffs: list[np.ndarray] = []
    signal = noise = 0.0
    top1: list[np.ndarray] = []
    for binding in lowered.outputs:
        expected = _codes(binding, reference[binding.onnx_name])
        got = _codes(binding, binding.to_onnx(outputs[binding.tflite_name]))
        diff = np.abs(got - expected.reshape(got.shape))
        diffs.append(diff.reshape(-1))
        real_expected = binding.params.dequantize(expected).astype(np.float64)
        real_got = binding.params.dequantize(got).astype(np.float64)
        signal += float(np.sum(real_expected**2))
        noise += float(np.sum((real_got - real_expected.reshape(real_got.shape)) ** 2))
        if _classes(binding, lowered.inputs):
            top1.append(np.argmax(got, axis=1) == np.argmax(expected.reshape(got.shape), axis=1))
    flat = np.concatenate(diffs)
    return RuntimeAgreement(
        runtime=runtime,
        samples=samples,
        identical_pct=100.0 * float(np.mean(flat == 0)),
        within_one_quantum_pct=100.0 * float(np.mean(flat <= 1)),
        max_quanta_diff=int(flat.max(initial=0)),
        top1_agreement_pct=100.0 * float(np.mean(np.concatenate(top1))) if top1 else None,
        sqnr_db=sqnr_db(signal / flat.size, noise / flat.size),
        invoke_ms=invoke_ms,
    )


def _problems(agreement: RuntimeAgreement) -> list[str]:
    problems: list[str] = []
    if agreement.sqnr_db < MIN_SQNR_DB:
        problems.append(f"{agreement.runtime} outputs differ from onnxruntime's by SQNR {agreement.sqnr_db:.1f} dB "
                        f"(< {MIN_SQNR_DB:g} dB; max {agreement.max_quanta_diff} quanta apart)")
    top1 = agreement.top1_agreement_pct
    if top1 is not None and top1 < MIN_TOP1_AGREEMENT_PCT:
        problems.append(f"{agreement.runtime} agrees with onnxruntime on top-1 for {top1:.1f}% of samples "
                        f"(< {MIN_TOP1_AGREEMENT_PCT:g}%)")
    return problems


def validate_tflite(qdq_path: Path, tflite: bytes, lowered: LoweredModel, samples: Mapping[str, np.ndarray], *,
                    arena_bytes: int, source: str = "eval") -> Validation:
    """Compare the .tflite `tflite` in every runtime with onnxruntime running `qdq_path` on `samples`."""
    count = len(next(iter(samples.values())))
    feeds_onnx = {b.onnx_name: np.asarray(samples[b.onnx_name], np.float32) for b in lowered.inputs}
    with OnnxRuntimeEngine(qdq_path, simulate_int8=True) as reference_engine:
        reference = reference_engine.run(feeds_onnx)
    feeds = {b.tflite_name: b.to_tflite(feeds_onnx[b.onnx_name]) for b in lowered.inputs}
    results: list[RuntimeAgreement] = []
    for runtime in VALIDATION_RUNTIMES:
        with open_engine(tflite, runtime, arena_bytes=arena_bytes, threads=1) as engine:
            started = time.perf_counter()
            outputs = engine.run(feeds)
            invoke_ms = 1000.0 * (time.perf_counter() - started) / max(count, 1)
        results.append(_agreement(runtime, lowered, reference, outputs, count, invoke_ms))
    problems = [p for r in results for p in _problems(r)]
    return Validation(samples=count, source=source, runtimes=tuple(results), problems=tuple(problems))


def describe(agreement: RuntimeAgreement) -> str:
    """One line of numbers for notes and errors."""
    top1 = "" if agreement.top1_agreement_pct is None else f", top-1 {agreement.top1_agreement_pct:.1f}%"
    sqnr = "exact" if agreement.sqnr_db >= SQNR_CAP_DB else f"SQNR {agreement.sqnr_db:.1f} dB"
    return (f"{agreement.runtime}: {agreement.identical_pct:.1f}% identical, max {agreement.max_quanta_diff} "
            f"quanta{top1}, {sqnr}")
