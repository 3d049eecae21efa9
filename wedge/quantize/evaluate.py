"""Stage 5: how much int8 costs — task accuracy (with labels) and fp32-vs-int8 agreement on every output.

Metrics stream over the eval set batch by batch: top-1 agreement, cosine similarity, SQNR, max/mean abs error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np

from wedge.quantize.calibration import SampleSet
from wedge.quantize.metrics import DEFAULT_THRESHOLD, TaskMetric, TopOne, is_class_scores, metric_for
from wedge.quantize.stream import StatePairs, fed_back
from wedge.runtime.engines import Engine

# Identical outputs have infinite SQNR; a finite cap keeps reports valid JSON and sortable.
SQNR_CAP_DB: Final = 300.0
# Confusion matrices are kept up to this many classes (a 1000-class matrix is a million cells in report.json).
CONFUSION_MAX_CLASSES: Final = 64


def format_sqnr(value_db: float) -> str:
    """An SQNR for people: "lossless" at the cap (nothing differs), else dB with one decimal."""
    return "lossless" if value_db >= SQNR_CAP_DB else f"{value_db:.1f} dB"


def format_added_sqnr(value_db: float) -> str:
    """The SQNR of the noise one layer adds: at the cap it adds none that can be measured."""
    return "no added noise" if value_db >= SQNR_CAP_DB else f"{value_db:.1f} dB"


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """Signal-to-quantization-noise ratio in dB, capped at SQNR_CAP_DB."""
    if noise_power <= 0.0:
        return SQNR_CAP_DB
    if signal_power <= 0.0:
        return -SQNR_CAP_DB
    return min(SQNR_CAP_DB, 10.0 * math.log10(signal_power / noise_power))


@dataclass(frozen=True)
class OutputAgreement:
    """How closely the int8 model's output follows the fp32 model's, over the eval set.

    `metric` and `metric_pct` are the output's task metric (top-1, token or pixel agreement, positive F1,
    decision agreement); `top1_agreement_pct` repeats it when it is top-1.
    """

    name: str
    top1_agreement_pct: float | None
    cosine: float
    sqnr_db: float
    max_abs_error: float
    mean_abs_error: float
    metric: str | None = None
    metric_pct: float | None = None
    metric_extras: dict[str, float] = field(default_factory=dict)
    fp32_min: float = 0.0  # the fp32 output's range over the eval set: what max_abs_error is measured against
    fp32_max: float = 0.0


Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Confusion:
    """Class predictions over the eval set, rows the truth and columns the prediction.

    `fp32` and `int8` count labels against each model's prediction (with labels); `agreement` counts fp32's
    prediction (rows) against int8's (columns), with or without labels.
    """

    classes: int
    agreement: Matrix
    fp32: Matrix | None = None
    int8: Matrix | None = None

    @staticmethod
    def per_class_pct(matrix: Matrix) -> tuple[float | None, ...]:
        """Each row's diagonal share in percent: per-class accuracy (recall), None for a class never seen."""
        return tuple(100.0 * row[i] / sum(row) if sum(row) else None for i, row in enumerate(matrix))


class _ConfusionCounter:
    def __init__(self, classes: int, with_labels: bool) -> None:
        self.classes = classes
        self.agreement = np.zeros((classes, classes), np.int64)
        self.fp32 = np.zeros((classes, classes), np.int64) if with_labels else None
        self.int8 = np.zeros((classes, classes), np.int64) if with_labels else None

    def add(self, ref: np.ndarray, got: np.ndarray, truth: np.ndarray | None) -> None:
        a, b = _predict(ref), _predict(got)
        np.add.at(self.agreement, (a, b), 1)
        if truth is not None and self.fp32 is not None and self.int8 is not None:
            seen = (truth >= 0) & (truth < self.classes)  # out-of-range labels count in accuracy, not here
            np.add.at(self.fp32, (truth[seen], a[seen]), 1)
            np.add.at(self.int8, (truth[seen], b[seen]), 1)

    def result(self) -> Confusion:
        def frozen(matrix: np.ndarray | None) -> Matrix | None:
            return None if matrix is None else tuple(tuple(int(v) for v in row) for row in matrix)

        return Confusion(self.classes, frozen(self.agreement) or (), frozen(self.fp32), frozen(self.int8))


# "lm" (decoder language models) is routed by the CLI to wedge.quantize.lm before this module is involved.
TASKS: Final = ("auto", "classification", "detection", "segmentation", "sequence", "regression", "reconstruction",
                "lm")
MAX_CLASSES: Final = 1000


def explain_task(task: str, input_shapes: list[tuple[int, ...]], output_shape: tuple[int, ...],
                 has_labels: bool) -> tuple[str, str]:
    """(task, why): what the primary output is, inferred only where the shapes leave no doubt."""
    if task != "auto":
        return task, "given with --task"
    shape = list(output_shape)
    if has_labels:
        return "classification", "the eval set has labels"
    if len(input_shapes) == 1 and tuple(input_shapes[0][1:]) == tuple(output_shape[1:]):
        return "reconstruction", f"output {shape} is shaped like the input (an autoencoder)"
    if is_class_scores(tuple(output_shape), MAX_CLASSES):
        return "classification", f"output {shape} is [N, classes]"
    return "regression", (f"output {shape} could be several things: judged as regression (SQNR, cosine); give "
                          "--task detection|segmentation|sequence|classification if it is one")


def resolve_task(task: str, input_shapes: list[tuple[int, ...]], output_shape: tuple[int, ...],
                 has_labels: bool) -> str:
    """What the primary output is (see explain_task)."""
    return explain_task(task, input_shapes, output_shape, has_labels)[0]


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
    task_reason: str = ""
    streamed: bool = False  # states fed back step by step (--stream-state), not taken from the data
    confusion: Confusion | None = None  # classification with at most CONFUSION_MAX_CLASSES classes

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

    def __init__(self, name: str, metric: TaskMetric | None) -> None:
        self.name = name
        self.metric = metric
        self.signal = 0.0
        self.noise = 0.0
        self.abs_sum = 0.0
        self.elements = 0
        self.max_abs = 0.0
        self.cosine_sum = 0.0
        self.agree = 0
        self.rows = 0
        self.count = 0
        self.low = math.inf
        self.high = -math.inf

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        ref64 = ref.astype(np.float64).reshape(len(ref), -1)
        got64 = got.astype(np.float64).reshape(len(got), -1)
        diff = ref64 - got64
        self.signal += float(np.sum(ref64 * ref64))
        self.noise += float(np.sum(diff * diff))
        self.abs_sum += float(np.sum(np.abs(diff)))
        self.elements += diff.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        if ref64.size:
            self.low, self.high = min(self.low, float(ref64.min())), max(self.high, float(ref64.max()))
        norms = np.linalg.norm(ref64, axis=1) * np.linalg.norm(got64, axis=1)
        dots = np.sum(ref64 * got64, axis=1)
        both_zero = norms == 0
        self.cosine_sum += float(np.sum(np.where(both_zero, 1.0, dots / np.where(both_zero, 1.0, norms))))
        if self.metric is not None:
            self.metric.add(ref, got.reshape(ref.shape))
        self.count += len(ref)

    def result(self) -> OutputAgreement:
        per_sample = max(1, self.count)
        metric = None if self.metric is None else self.metric.result()
        return OutputAgreement(
            name=self.name,
            top1_agreement_pct=metric.pct if metric is not None and metric.name == TopOne.name else None,
            cosine=self.cosine_sum / per_sample,
            sqnr_db=sqnr_db(self.signal, self.noise),
            max_abs_error=self.max_abs,
            mean_abs_error=self.abs_sum / max(1, self.elements),
            metric=None if metric is None else metric.name,
            metric_pct=None if metric is None else metric.pct,
            metric_extras={} if metric is None else dict(metric.extras),
            fp32_min=self.low if self.count else 0.0,
            fp32_max=self.high if self.count else 0.0,
        )


def compare_models(
    fp32: Engine,
    int8: Engine,
    samples: SampleSet,
    *,
    batch_size: int,
    task: str = "auto",
    on_batch: Callable[[int], None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    stream: StatePairs = (),
) -> Evaluation:
    """Run both engines on every sample; accuracy when `samples.labels`, agreement on every output (its task
    metric, SQNR, cosine, errors); `threshold` decides 1-value outputs and detection scores. With `stream`
    (input, output) state pairs, samples run one at a time in order and each engine gets its own states back."""
    names = [o.name for o in fp32.outputs]
    labels = samples.labels
    first = True
    reason = ""
    stats: list[_OutputStats] = []
    confusion: _ConfusionCounter | None = None
    scores_fp32: list[np.ndarray] = []
    scores_int8: list[np.ndarray] = []
    correct_fp32 = correct_int8 = 0
    seen = 0
    states_fp32: dict[str, np.ndarray] | None = None
    states_int8: dict[str, np.ndarray] | None = None
    for batch in samples.batches(1 if stream else batch_size):
        ref = fp32.run(fed_back(states_fp32, batch, stream))
        got = int8.run(fed_back(states_int8, batch, stream))
        if stream:
            states_fp32, states_int8 = ref, got
        if first:
            task, reason = explain_task(task, [v.shape for v in batch.values()], ref[names[0]].shape,
                                        labels is not None)
            stats = [_OutputStats(n, metric_for(task, ref[n].shape, i == 0, threshold, MAX_CLASSES))
                     for i, n in enumerate(names)]
            shape = ref[names[0]].shape
            classes = int(np.prod(shape[1:])) if len(shape) > 1 else 0
            if task == "classification" and 2 <= classes <= CONFUSION_MAX_CLASSES and shape[-1] == classes:
                confusion = _ConfusionCounter(classes, labels is not None)
            first = False
        count = len(next(iter(batch.values())))
        for stat in stats:
            stat.add(ref[stat.name], got[stat.name])
        truth = None if labels is None else labels[seen : seen + count]
        if truth is not None:
            correct_fp32 += int(np.sum(_predict(ref[names[0]]) == truth))
            correct_int8 += int(np.sum(_predict(got[names[0]]) == truth))
        if confusion is not None:
            confusion.add(ref[names[0]], got[names[0]], truth)
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
        task_reason=reason,
        streamed=bool(stream),
        confusion=None if confusion is None or seen == 0 else confusion.result(),
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
