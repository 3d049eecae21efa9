"""Task metrics say what a user of each kind of output would check, and the task is inferred only without doubt."""

from __future__ import annotations

import numpy as np
import pytest

from wedge.quantize.evaluate import Evaluation, OutputAgreement, explain_task
from wedge.quantize.metrics import DecisionAgreement, PixelAgreement, PositiveF1, SequenceAgreement, TopOne, metric_for
from wedge.quantize.report import AccuracyBudget


@pytest.mark.parametrize(("output", "task"), [
    ((1, 10), "classification"),
    ((1, 1, 96, 96), "regression"),  # a detector's probability map: its last axis is not a class axis
    ((1, 20, 6625), "regression"),  # a recognizer's sequence: not told, so not guessed
    ((1, 4), "classification"),
])
def test_only_an_n_by_classes_output_is_inferred_to_be_classification(output: tuple, task: str) -> None:
    inferred, reason = explain_task("auto", [(1, 3, 96, 96)], output, has_labels=False)
    assert inferred == task
    if task == "regression":
        assert "--task detection|segmentation|sequence" in reason


def test_a_given_task_is_kept_and_says_so() -> None:
    assert explain_task("detection", [(1, 3, 8, 8)], (1, 1, 8, 8), False) == ("detection", "given with --task")


def test_decisions_flip_even_when_the_cosine_of_a_1_value_output_is_perfect() -> None:
    ref = np.linspace(0.45, 0.55, 100).reshape(100, 1).astype(np.float32)
    got = ref + 0.02  # a small bias: cosine of a 1-element vector is always 1
    metric = DecisionAgreement(0.5)
    metric.add(ref, got)
    result = metric.result()
    assert result is not None and result.pct == pytest.approx(80.0, abs=2.0)
    assert isinstance(metric_for("regression", (1, 1), True, 0.5, 1000), DecisionAgreement)


def test_positive_f1_counts_the_detections_int8_keeps() -> None:
    ref = np.zeros((2, 1, 4, 4), np.float32)
    ref[0, 0, :2, :2] = 0.9  # 4 positives
    got = ref.copy()
    got[0, 0, 0, 0] = 0.1  # one missed
    got[1, 0, 3, 3] = 0.8  # one spurious
    metric = PositiveF1(0.5)
    metric.add(ref, got)
    result = metric.result()
    assert result is not None and result.pct == pytest.approx(100 * 2 * 3 / (2 * 3 + 1 + 1))


def test_sequence_agreement_counts_steps_and_whole_sequences() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4, 5, 7)).astype(np.float32)
    got = ref.copy()
    got[0, 2] = -ref[0, 2]  # one step of one sequence changes class
    metric = SequenceAgreement()
    metric.add(ref, got)
    result = metric.result()
    assert result is not None and result.pct == pytest.approx(100 * 19 / 20)
    assert result.extras["sequence_match_pct"] == pytest.approx(75.0)


def test_pixel_agreement_takes_the_class_axis_and_reports_iou() -> None:
    ref = np.zeros((1, 3, 2, 2), np.float32)
    ref[0, 1] = 1.0  # every pixel class 1
    got = ref.copy()
    got[0, 2, 0, 0] = 2.0  # one pixel becomes class 2
    metric = PixelAgreement(0.5)
    metric.add(ref, got)
    result = metric.result()
    assert result is not None and result.pct == 75.0
    assert result.extras["mean_iou_pct"] == pytest.approx(100 * (3 / 4 + 0) / 2)


def test_the_budget_is_judged_on_the_task_metric() -> None:
    out = OutputAgreement("map", None, 0.99, 30.0, 0.1, 0.01, metric=PositiveF1.name, metric_pct=95.6)
    evaluation = Evaluation("detection", 10, None, None, (out,))
    budget = AccuracyBudget.judge(evaluation, 5.0)
    assert budget.metric == "positive_f1" and budget.drop_pp == pytest.approx(4.4) and not budget.exceeded
    assert AccuracyBudget.judge(evaluation, 1.0).exceeded
    assert TopOne.name == "top-1 agreement"
