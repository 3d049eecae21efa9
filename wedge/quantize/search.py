"""Stage 3+4+5 looped: try each calibration method, quantize, score on the eval set, keep the best.

The score is task accuracy when the eval set has labels, else the primary output's SQNR against fp32.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedge.quantize.calibrate import Method, calibrate
from wedge.quantize.calibration import SampleSet
from wedge.quantize.errors import QuantizeError
from wedge.quantize.evaluate import Evaluation, compare_models
from wedge.quantize.load import PreparedModel
from wedge.quantize.metrics import DEFAULT_THRESHOLD
from wedge.quantize.plan import QuantPlan
from wedge.quantize.progress import Progress
from wedge.quantize.static import write_qdq_model
from wedge.quantize.stream import StatePairs
from wedge.runtime.engines import Engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine


@dataclass(frozen=True)
class SkippedMethod:
    """A calibration method that failed on this model, and why (the search goes on without it)."""

    method: Method
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.value, "skipped": self.reason}


@dataclass(frozen=True)
class Candidate:
    """One calibration method's int8 model and how it scored."""

    method: Method
    path: Path
    evaluation: Evaluation
    calibration_s: float

    @property
    def score(self) -> tuple[float, float]:
        """Higher is better: (task accuracy or -1 without labels, SQNR of the primary output)."""
        accuracy = self.evaluation.int8_accuracy_pct
        return (accuracy if accuracy is not None else -1.0, self.evaluation.primary.sqnr_db)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.value,
            "calibration_s": round(self.calibration_s, 3),
            "int8_accuracy_pct": self.evaluation.int8_accuracy_pct,
            "top1_agreement_pct": self.evaluation.primary.top1_agreement_pct,
            "metric": self.evaluation.primary.metric,
            "metric_pct": self.evaluation.primary.metric_pct,
            "sqnr_db": self.evaluation.primary.sqnr_db,
            "cosine": self.evaluation.primary.cosine,
        }


def search_calibration(
    prepared: PreparedModel,
    fp32: Engine,
    calib: SampleSet,
    evaluation_set: SampleSet,
    methods: Sequence[Method],
    workdir: Path,
    *,
    batch_size: int,
    task: str,
    progress: Progress,
    plan: QuantPlan | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    stream: StatePairs = (),
) -> tuple[Candidate, list[Candidate], list[SkippedMethod]]:
    """Quantize with each method into `workdir` as `plan` says; returns the best candidate, all of them in the
    order tried, and the methods that failed (with their reason). Raises only when every method fails."""
    plan = plan or QuantPlan()
    candidates: list[Candidate] = []
    skipped: list[SkippedMethod] = []
    for method in methods:
        started = time.perf_counter()
        advance = progress.stage(f"calibrating ({method.value})", len(calib))
        path = workdir / f"model.{method.value}.int8.onnx"  # fixed: the source name may not be UTF-8
        try:
            ranges = calibrate(prepared.path, calib, method, batch_size=batch_size, on_batch=advance,
                               op_types=plan.op_types)
            calibration_s = time.perf_counter() - started
            write_qdq_model(prepared.path, ranges, path, plan)
        except QuantizeError as exc:
            # One calibrator's failure (percentile: "too many bins" on some ranges) leaves the others usable.
            skipped.append(SkippedMethod(method, str(exc)))
            continue
        advance = progress.stage(f"evaluating ({method.value})", len(evaluation_set))
        with OnnxRuntimeEngine(path, simulate_int8=True) as int8:
            result = compare_models(fp32, int8, evaluation_set, batch_size=batch_size, task=task, threshold=threshold,
                                    stream=stream,
                                    on_batch=advance)
        candidates.append(Candidate(method, path, result, calibration_s))
    if not candidates:
        raise QuantizeError("every calibration method failed: " + "; ".join(s.reason for s in skipped))
    # max() keeps the first of equal scores: methods are listed simplest first.
    best = max(candidates, key=lambda c: c.score)
    return best, candidates, skipped
