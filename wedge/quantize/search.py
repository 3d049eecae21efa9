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
from wedge.quantize.evaluate import Evaluation, compare_models
from wedge.quantize.load import PreparedModel
from wedge.quantize.progress import Progress
from wedge.quantize.static import write_qdq_model
from wedge.runtime.engines import Engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine


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
) -> tuple[Candidate, list[Candidate]]:
    """Quantize with each method into `workdir`; returns the best candidate and all of them, in order tried."""
    candidates: list[Candidate] = []
    for method in methods:
        started = time.perf_counter()
        advance = progress.stage(f"calibrating ({method.value})", len(calib))
        ranges = calibrate(prepared.path, calib, method, batch_size=batch_size, on_batch=advance)
        calibration_s = time.perf_counter() - started
        path = workdir / f"model.{method.value}.int8.onnx"  # fixed: the source name may not be UTF-8
        write_qdq_model(prepared.path, ranges, path)
        advance = progress.stage(f"evaluating ({method.value})", len(evaluation_set))
        with OnnxRuntimeEngine(path, simulate_int8=True) as int8:
            result = compare_models(fp32, int8, evaluation_set, batch_size=batch_size, task=task,
                                    on_batch=advance)
        candidates.append(Candidate(method, path, result, calibration_s))
    # max() keeps the first of equal scores: methods are listed simplest first.
    best = max(candidates, key=lambda c: c.score)
    return best, candidates
