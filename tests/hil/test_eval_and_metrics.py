"""Eval sets laid out for the device's inputs, and the agreement and latency figures the report shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wedge.hil.errors import EvalDataError
from wedge.hil.eval_data import load_eval
from wedge.hil.metrics import agreement, confusion, latency
from wedge.runtime.types import QuantParams, TensorSpec

NHWC = TensorSpec("input", (1, 8, 8, 1), np.dtype(np.int8), QuantParams((1 / 128,), (0,), 0))


def test_channel_first_samples_are_fed_channel_last_and_quantized(tmp_path: Path) -> None:
    path = tmp_path / "eval.npz"
    x = np.linspace(-1, 0.99, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    np.savez(path, input=x, labels=np.array([3, 4]))
    eval_set = load_eval(path, (NHWC,))
    assert len(eval_set) == 2 and eval_set.labels.tolist() == [3, 4]
    first = eval_set.feeds[0]["input"]
    assert first.shape == (1, 8, 8, 1) and first.dtype == np.int8
    assert np.array_equal(first[0, :, :, 0], np.rint(x[0, 0] * 128).astype(np.int8))
    assert len(eval_set.input_bytes(0, (NHWC,))) == 64


def test_an_eval_set_that_does_not_fit_the_model_says_so(tmp_path: Path) -> None:
    path = tmp_path / "eval.npz"
    np.savez(path, input=np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(EvalDataError, match=r"shape \[5\] do not fit input 'input' of shape \[8, 8, 1\]"):
        load_eval(path, (NHWC,))


def test_a_missing_eval_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="not found"):
        load_eval(tmp_path / "nope.npz", (NHWC,))


def test_agreement_figures_match_their_definitions() -> None:
    host = np.array([[1.0, 0.0], [0.0, 2.0]])
    device = np.array([[1.0, 0.5], [0.0, 2.0]])
    result = agreement(device, host, np.array([0, 0]))
    assert result.mae == pytest.approx(0.125) and result.rmse == pytest.approx(0.25)
    assert result.l2_relative_error == pytest.approx(0.5 / np.sqrt(5))
    assert result.top1_agreement == 1.0 and result.exact_samples == 1
    assert result.device_accuracy == 0.5 and result.cosine_similarity < 1.0
    assert confusion(device.argmax(axis=1), np.array([0, 0]), 2) == [[1, 1], [0, 0]]


def test_latency_is_the_median_of_the_repeats() -> None:
    figures = latency([100.0, 300.0, 200.0, 250.0, 150.0], 10, 2, "device timer", [], [0.1] * 5)
    assert figures.median_us == 200.0 and figures.throughput_ips == pytest.approx(5000.0)
