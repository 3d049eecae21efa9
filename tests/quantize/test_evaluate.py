"""Stage 5: the fp32-vs-int8 metrics measure what their names say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.quantize.conftest import tiny_data
from wedge.quantize.calibration import ArraySampleSet
from wedge.quantize.evaluate import SQNR_CAP_DB, compare_models, resolve_task, sqnr_db
from wedge.runtime.engines import open_engine


def test_identical_models_agree_perfectly(tiny_model: Path) -> None:
    x = tiny_data(20)
    samples = ArraySampleSet({"x": x}, np.zeros(20, np.int64), "mem")
    with open_engine(tiny_model) as a, open_engine(tiny_model) as b:
        result = compare_models(a, b, samples, batch_size=7)
    out = result.primary
    assert result.samples == 20 and result.task == "classification"
    assert out.top1_agreement_pct == 100.0 and out.sqnr_db == SQNR_CAP_DB
    assert out.cosine == pytest.approx(1.0) and out.max_abs_error == 0.0
    assert result.accuracy_drop_pp == 0.0


def test_sqnr_is_ten_log_ratio_of_powers() -> None:
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
    assert sqnr_db(1.0, 0.0) == SQNR_CAP_DB


@pytest.mark.parametrize("inputs,output,labels,expected", [
    ([(1, 640)], (1, 640), False, "reconstruction"),
    ([(1, 1, 8, 8)], (1, 10), False, "classification"),
    ([(1, 1, 8, 8)], (1, 1), False, "regression"),
    ([(1, 640)], (1, 640), True, "classification"),
])
def test_task_is_inferred_from_shapes_and_labels(inputs, output, labels, expected) -> None:
    assert resolve_task("auto", inputs, output, labels) == expected
