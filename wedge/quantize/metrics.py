"""Task metrics of int8 against fp32, streamed batch by batch: what a user of each kind of output checks.

Class scores: top-1 agreement. Sequences ([N, T, K]): per-step agreement and whole-sequence match. Segmentation:
per-pixel class agreement and mean IoU. Detection score maps: F1 of the positives above a threshold. One value a
sample (a VAD's speech probability): the share of decisions on the same side of the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

DEFAULT_THRESHOLD: Final = 0.5


@dataclass(frozen=True)
class MetricResult:
    """One output's task metric: its name, the agreement in percent, and metric-specific extras."""

    name: str
    pct: float
    extras: dict[str, float] = field(default_factory=dict)


class TaskMetric:
    """Accumulates a metric over batches of fp32 (`ref`) and int8 (`got`) outputs."""

    name: str = ""

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> MetricResult | None:
        raise NotImplementedError


class _Counted(TaskMetric):
    def __init__(self) -> None:
        self.hits = 0
        self.total = 0

    def _count(self, same: np.ndarray) -> None:
        self.hits += int(np.sum(same))
        self.total += int(same.size)

    def result(self) -> MetricResult | None:
        return MetricResult(self.name, 100.0 * self.hits / self.total) if self.total else None


class TopOne(_Counted):
    """Classes on the last axis: the same argmax."""

    name = "top-1 agreement"

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        self._count(np.argmax(ref.reshape(-1, ref.shape[-1]), -1) == np.argmax(got.reshape(-1, got.shape[-1]), -1))


class SequenceAgreement(_Counted):
    """[N, T, K]: the same class at every step (CTC recognizers, taggers), and whole sequences the same."""

    name = "token agreement"

    def __init__(self) -> None:
        super().__init__()
        self.sequences = 0
        self.same_sequences = 0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        same = np.argmax(ref, -1) == np.argmax(got, -1)
        self._count(same)
        rows = same.reshape(len(same), -1)
        self.sequences += len(rows)
        self.same_sequences += int(np.sum(np.all(rows, axis=1)))

    def result(self) -> MetricResult | None:
        base = super().result()
        if base is None:
            return None
        return MetricResult(self.name, base.pct, {"sequence_match_pct": 100.0 * self.same_sequences / self.sequences})


class PixelAgreement(TaskMetric):
    """[N, C, ...]: the same class per pixel (argmax over C, or the threshold when C is 1), and mean IoU."""

    name = "pixel agreement"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.hits = 0
        self.total = 0
        self.intersection: dict[int, int] = {}
        self.union: dict[int, int] = {}

    def _classes(self, values: np.ndarray) -> np.ndarray:
        if values.ndim >= 3 and values.shape[1] > 1:
            return np.argmax(values, axis=1)
        return (values > self.threshold).astype(np.int64)

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        a, b = self._classes(ref), self._classes(got)
        self.hits += int(np.sum(a == b))
        self.total += int(a.size)
        for cls in np.union1d(np.unique(a), np.unique(b)):
            self.intersection[int(cls)] = self.intersection.get(int(cls), 0) + int(np.sum((a == cls) & (b == cls)))
            self.union[int(cls)] = self.union.get(int(cls), 0) + int(np.sum((a == cls) | (b == cls)))

    def result(self) -> MetricResult | None:
        if not self.total:
            return None
        ious = [self.intersection[c] / self.union[c] for c in self.union if self.union[c]]
        return MetricResult(self.name, 100.0 * self.hits / self.total,
                            {"mean_iou_pct": 100.0 * float(np.mean(ious)) if ious else 100.0})


class PositiveF1(TaskMetric):
    """Detection score maps and per-anchor scores: F1 of int8's positives (score > threshold) against fp32's."""

    name = "positive F1"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.both = self.only_ref = self.only_got = 0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        a, b = ref > self.threshold, got > self.threshold
        self.both += int(np.sum(a & b))
        self.only_ref += int(np.sum(a & ~b))
        self.only_got += int(np.sum(~a & b))

    def result(self) -> MetricResult | None:
        positives = 2 * self.both + self.only_ref + self.only_got
        f1 = 100.0 if positives == 0 else 100.0 * 2 * self.both / positives
        return MetricResult(self.name, f1, {"threshold": self.threshold,
                                            "fp32_positives": float(self.both + self.only_ref)})


class DecisionAgreement(_Counted):
    """One value a sample (a probability, a score): the same side of the threshold."""

    name = "decision agreement"

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        self._count((ref.reshape(-1) > self.threshold) == (got.reshape(-1) > self.threshold))

    def result(self) -> MetricResult | None:
        base = super().result()
        return None if base is None else MetricResult(self.name, base.pct, {"threshold": self.threshold})


def is_class_scores(shape: tuple[int, ...], max_classes: int) -> bool:
    """[N, K] with 2 <= K <= max_classes: the one shape that is class scores without being told."""
    return len(shape) == 2 and 2 <= shape[1] <= max_classes


def metric_for(task: str, shape: tuple[int, ...], primary: bool, threshold: float,
               max_classes: int) -> TaskMetric | None:
    """The metric of an output of `shape` (batch first): the task's for the primary output, the shape's else."""
    per_sample = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if primary:
        if task == "classification" and len(shape) >= 2 and shape[-1] > 1:
            return TopOne()
        if task == "sequence" and len(shape) == 3:
            return SequenceAgreement()
        if task == "segmentation" and len(shape) >= 3:
            return PixelAgreement(threshold)
        if task == "detection":
            return PositiveF1(threshold)
    if per_sample == 1:
        return DecisionAgreement(threshold)
    if not primary and is_class_scores(shape, max_classes):
        return TopOne()
    return None
