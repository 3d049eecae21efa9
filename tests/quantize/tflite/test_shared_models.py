"""The MLPerf Tiny reference models (../shared/models) export to int8 .tflite that TFLite-Micro runs.

Skipped when the folder is absent; slow, since each model is quantized, exported, validated and measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import SHARED_MODELS, shared_model
from tests.quantize.tflite.tflite_models import quantize_file
from wedge.cli import main
from wedge.quantize.tflite import export_tflite
from wedge.samples.reference_data import reference_data

pytestmark = [pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="../shared/models is absent"),
              pytest.mark.shared_models]

# (model, the TensorFlow converter's int8 reference, TFLite ops it must use, arena ceiling in bytes)
CASES = [
    ("vww_96_float.onnx", "vww_96_int8.tflite",
     {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"}, 120_000),
    ("pretrainedResnet.onnx", "pretrainedResnet_quant.tflite",
     {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"}, 70_000),
    ("ad01_fp32.onnx", "ad01_int8.tflite", {"FULLY_CONNECTED"}, 30_000),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model_file", "reference", "ops", "max_arena_bytes"), CASES)
def test_reference_model_exports_to_tflite_that_tflm_runs(model_file: str, reference: str, ops: set[str],
                                                         max_arena_bytes: int, tmp_path: Path) -> None:
    data = reference_data(SHARED_MODELS, model_file, calib_count=32, eval_count=40)
    qdq = quantize_file(shared_model(model_file), data.calib, tmp_path)
    result = export_tflite(qdq, tmp_path / "model.tflite", eval_samples={data.input_name: data.eval})
    assert ops <= set(result.op_histogram)
    assert "TRANSPOSE" not in result.op_histogram  # the converter's NHWC<->NCHW transposes cancel out
    assert result.validation.passed
    for run in result.validation.runtimes:
        # Rounding differences compound through depth and a softmax amplifies them; a lowering bug would not
        # stay above these (see the per-op tests for the tight bounds).
        assert run.sqnr_db >= 20.0
        assert run.top1_agreement_pct is None or run.top1_agreement_pct >= 92.5
    # Per-channel scales cost 12 bytes a channel in the schema; the converter's reference is the yardstick.
    assert result.size_bytes < 1.2 * shared_model(reference).stat().st_size
    assert result.arena_bytes < max_arena_bytes


@pytest.mark.parametrize("model_file", ["ad01_int8.tflite", "kws_ref_model.tflite", "str_ww_ref_model.tflite"])
def test_reference_int8_tflites_inspect_with_their_arena(model_file: str) -> None:
    result = CliRunner().invoke(main, ["inspect", str(shared_model(model_file)), "--json"])
    assert result.exit_code == 0, result.output
    arena = json.loads(result.stdout)["tflm_arena"]
    assert 1024 < arena["arena_bytes"] < 200_000
