"""The MLPerf Tiny reference int8 models (../shared/models), benched on virtual boards: flashed, bit-exact with
TFLite-Micro on the host, agreeing with LiteRT, latency from the cycle model. Skipped when the folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_MODELS
from tests.hil.conftest import write_map
from wedge.hil.runner import run_bench

pytestmark = [pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="../shared/models is absent"), pytest.mark.slow]


def _kws_inputs(count: int) -> np.ndarray:
    # MFCC-like values inside the model's int8 input range (scale 0.585, zero point 83: about -123..25)
    return np.random.default_rng(0).uniform(-100.0, 20.0, (count, 49, 10, 1)).astype(np.float32)


def _vww_inputs(count: int) -> np.ndarray:
    from wedge.samples.reference_data import natural_image_crops

    return natural_image_crops(count, 96, seed=0, scale=1.0).transpose(0, 2, 3, 1).copy()  # NHWC in [0, 1]


@pytest.mark.parametrize("model_file,profile,make_inputs", [
    ("kws_ref_model.tflite", "ring-nrf5340", _kws_inputs),
    ("vww_96_int8.tflite", "glasses-esp32s3", _vww_inputs),
])
def test_reference_int8_model_runs_bit_exact_on_a_virtual_board(tmp_path: Path, model_file: str, profile: str,
                                                                 make_inputs) -> None:
    eval_path = tmp_path / "eval.npz"
    np.savez(eval_path, input_1=make_inputs(6))
    board_map = write_map(tmp_path, {"dut": (profile, "virtual")})
    run = run_bench(SHARED_MODELS / model_file, board_map, tmp_path / "report", eval_path=eval_path,
                    suites=("flash", "accuracy", "latency"), samples=6)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (board,) = report["boards"]
    assert board["summary"]["failed"] == board["summary"]["error"] == 0, board["tests"]
    metrics = board["metrics"]
    assert metrics["bit_exact_vs_host_tflm"]["exact_samples"] == 6
    assert metrics["accuracy"]["top1_agreement"] >= 5 / 6
    assert metrics["latency"]["repeats"] >= 5
    assert run is not None
