"""Stage 5: how much int8 costs — task accuracy (with labels) and fp32-vs-int8 agreement on every output.

Metrics stream over the eval set batch by batch: top-1 agreement, cosine similarity, SQNR, max/mean abs error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

from wedge.quantize.calibration import SampleSet
from wedge.runtime.engines import Engine

# Identical outputs have infinite SQNR; a finite cap keeps reports valid JSON and sortable.
SQNR_CAP_DB: Final = 300.0


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """Signal-to-quantization-noise ratio in dB, capped at SQNR_CAP_DB."""
    if noise_power <= 0.0:
        return SQNR_CAP_DB
    if signal_power <= 0.0:
        return -SQNR_CAP_DB
    return min(SQNR_CAP_DB, 10.0 * math.log10(signal_power / noise_power))


@dataclass(frozen=True)
class OutputAgreement:
    """How closely the int8 model's output follows the fp32 model's, over the eval set."""

    name: str
    top1_agreement_pct: float | None
    cosine: float
    sqnr_db: float
    max_abs_error: float
    mean_abs_error: float


# "lm" (decoder language models) is routed by the CLI to wedge.quantize.lm before this module is involved.
TASKS: Final = ("auto", "classification", "regression", "reconstruction", "lm")
MAX_CLASSES: Final = 1000


def resolve_task(task: str, input_shapes: list[tuple[int, ...]], output_shape: tuple[int, ...],
                 has_labels: bool) -> str:
    """What the primary output is: labels or a class-sized last axis mean classification; an output shaped
    like the only input is a reconstruction (autoencoder, anomaly score = reconstruction error)."""
    if task != "auto":
        return task
    if has_labels:
        return "classification"
    if len(input_shapes) == 1 and tuple(input_shapes[0][1:]) == tuple(output_shape[1:]):
        return "reconstruction"
    if len(output_shape) >= 2 and 2 <= output_shape[-1] <= MAX_CLASSES:
        return "classification"
    return "regression"


@dataclass(frozen=True)
class ReconstructionScores:
    """Autoencoders are judged by their anomaly score (per-sample reconstruction MSE): int8 vs fp32."""

    correlation: float
    mean_relative_error: float


@dataclass(frozen=True)
class Evaluation:
    """fp32 vs int8 on one eval set."""

    task: str
    samples: int
    fp32_accuracy_pct: float | None
    int8_accuracy_pct: float | None
    outputs: tuple[OutputAgreement, ...]
    reconstruction: ReconstructionScores | None = None

    @property
    def primary(self) -> OutputAgreement:
        return self.outputs[0]

    @property
    def accuracy_drop_pp(self) -> float | None:
        """fp32 minus int8 task accuracy in percentage points (None without labels)."""
        if self.fp32_accuracy_pct is None or self.int8_accuracy_pct is None:
            return None
        return self.fp32_accuracy_pct - self.int8_accuracy_pct

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accuracy_drop_pp"] = self.accuracy_drop_pp
        return data


class _OutputStats:
    """Running sums for one output, so no batch has to be kept."""

    def __init__(self, name: str, classify: bool) -> None:
        self.name = name
        self.classify = classify
        self.signal = 0.0
        self.noise = 0.0
        self.abs_sum = 0.0
        self.elements = 0
        self.max_abs = 0.0
        self.cosine_sum = 0.0
        self.agree = 0
        self.rows = 0
        self.count = 0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        ref64 = ref.astype(np.float64).reshape(len(ref), -1)
        got64 = got.astype(np.float64).reshape(len(got), -1)
        diff = ref64 - got64
        self.signal += float(np.sum(ref64 * ref64))
        self.noise += float(np.sum(diff * diff))
        self.abs_sum += float(np.sum(np.abs(diff)))
        self.elements += diff.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        norms = np.linalg.norm(ref64, axis=1) * np.linalg.norm(got64, axis=1)
        dots = np.sum(ref64 * got64, axis=1)
        both_zero = norms == 0
        self.cosine_sum += float(np.sum(np.where(both_zero, 1.0, dots / np.where(both_zero, 1.0, norms))))
        # top-1 only means something for a class axis: the last one, with more than one entry.
        if self.classify and ref.ndim >= 2 and ref.shape[-1] > 1:
            ref_rows = ref.reshape(-1, ref.shape[-1])
            self.agree += int(np.sum(np.argmax(ref_rows, -1) == np.argmax(got.reshape(-1, got.shape[-1]), -1)))
            self.rows += len(ref_rows)
        self.count += len(ref)

    def result(self) -> OutputAgreement:
        per_sample = max(1, self.count)
        return OutputAgreement(
            name=self.name,
            top1_agreement_pct=100.0 * self.agree / max(1, self.rows) if self.rows else None,
            cosine=self.cosine_sum / per_sample,
            sqnr_db=sqnr_db(self.signal, self.noise),
            max_abs_error=self.max_abs,
            mean_abs_error=self.abs_sum / max(1, self.elements),
        )


def compare_models(
    fp32: Engine,
    int8: Engine,
    samples: SampleSet,
    *,
    batch_size: int,
    task: str = "auto",
    on_batch: Callable[[int], None] | None = None,
) -> Evaluation:
    """Run both engines on every sample; accuracy when `samples.labels`, agreement on every output."""
    names = [o.name for o in fp32.outputs]
    labels = samples.labels
    first = True
    stats: list[_OutputStats] = []
    scores_fp32: list[np.ndarray] = []
    scores_int8: list[np.ndarray] = []
    correct_fp32 = correct_int8 = 0
    seen = 0
    for batch in samples.batches(batch_size):
        ref = fp32.run(batch)
        got = int8.run(batch)
        if first:
            task = resolve_task(task, [v.shape for v in batch.values()], ref[names[0]].shape, labels is not None)
            stats = [_OutputStats(n, classify=task == "classification") for n in names]
            first = False
        count = len(next(iter(batch.values())))
        for stat in stats:
            stat.add(ref[stat.name], got[stat.name])
        if labels is not None:
            truth = labels[seen : seen + count]
            correct_fp32 += int(np.sum(_predict(ref[names[0]]) == truth))
            correct_int8 += int(np.sum(_predict(got[names[0]]) == truth))
        if task == "reconstruction":
            source = next(iter(batch.values())).reshape(count, -1).astype(np.float64)
            scores_fp32.append(np.mean((ref[names[0]].reshape(count, -1) - source) ** 2, axis=1))
            scores_int8.append(np.mean((got[names[0]].reshape(count, -1) - source) ** 2, axis=1))
        seen += count
        if on_batch is not None:
            on_batch(count)
    with_labels = labels is not None and seen > 0
    return Evaluation(
        task=task,
        samples=seen,
        fp32_accuracy_pct=100.0 * correct_fp32 / seen if with_labels else None,
        int8_accuracy_pct=100.0 * correct_int8 / seen if with_labels else None,
        outputs=tuple(s.result() for s in stats),
        reconstruction=_reconstruction(scores_fp32, scores_int8) if scores_fp32 else None,
    )


def _reconstruction(fp32_parts: list[np.ndarray], int8_parts: list[np.ndarray]) -> ReconstructionScores:
    a = np.concatenate(fp32_parts)
    b = np.concatenate(int8_parts)
    spread = float(np.std(a) * np.std(b))
    correlation = float(np.mean((a - a.mean()) * (b - b.mean())) / spread) if spread > 0 else 1.0
    relative = float(np.mean(np.abs(b - a) / np.maximum(np.abs(a), 1e-12)))
    return ReconstructionScores(correlation=correlation, mean_relative_error=relative)


def _predict(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits.reshape(len(logits), -1), axis=1)
