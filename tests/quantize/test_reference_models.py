"""The MLPerf Tiny reference models (../shared/models) quantize and report sensibly; skipped when absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_MODELS
from wedge.boards import load
from wedge.quantize.calibrate import Method
from wedge.quantize.pipeline import QuantizeOptions, run_quantize
from wedge.samples.reference_data import reference_data

pytestmark = pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="../shared/models is absent")

# (file, board, task, floor on int8-vs-fp32 SQNR in dB)
CASES = [
    ("vww_96_float.onnx", "glasses-esp32s3", "classification", 25.0),
    ("pretrainedResnet.onnx", "glasses-esp32s3", "classification", 15.0),
    ("ad01_fp32.onnx", "ring-nrf5340", "reconstruction", 25.0),
]


@pytest.mark.parametrize("model_file,board,task,min_sqnr_db", CASES)
def test_reference_model_quantizes_and_reports(model_file: str, board: str, task: str, min_sqnr_db: float,
                                               tmp_path: Path) -> None:
    data = reference_data(SHARED_MODELS, model_file, calib_count=32, eval_count=48)
    calib, evaluation = tmp_path / "calib.npz", tmp_path / "eval.npz"
    np.savez(calib, **{data.input_name: data.calib})
    np.savez(evaluation, **{data.input_name: data.eval})
    report = run_quantize(SHARED_MODELS / model_file, tmp_path / "out", calib=calib, evaluation=evaluation,
                          board=load(board),
                          options=QuantizeOptions(methods=(Method.MINMAX, Method.PERCENTILE), layer_samples=8))
    assert Path(report.output).is_file()
    assert any("opset upgraded from 11" in note for note in report.notes)
    assert report.evaluation.task == task
    assert report.evaluation.primary.sqnr_db >= min_sqnr_db
    if task == "classification":
        assert report.evaluation.primary.top1_agreement_pct >= 90.0
    else:
        assert report.evaluation.reconstruction is not None
        assert report.evaluation.reconstruction.correlation > 0.99
    assert report.size.ratio < 0.36
    assert report.layers and report.fit is not None
