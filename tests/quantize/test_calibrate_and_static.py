"""Stages 3-4: streamed calibration gives usable ranges; the int8 model follows the TFLite int8 spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tests.quantize.conftest import tiny_data
from wedge.quantize.calibrate import CHUNK_SAMPLES, Method, _chunks, calibrate
from wedge.quantize.calibration import ArraySampleSet
from wedge.quantize.load import prepare_model
from wedge.quantize.static import write_qdq_model


@pytest.mark.parametrize("method", list(Method))
def test_every_method_calibrates_a_set_with_a_short_last_batch(tiny_model: Path, tmp_path: Path,
                                                               method: Method) -> None:
    prepared = prepare_model(tiny_model, tmp_path)
    samples = ArraySampleSet({"x": tiny_data(CHUNK_SAMPLES + 13)}, None, "mem")
    seen: list[int] = []
    ranges = calibrate(prepared.path, samples, method, batch_size=8, on_batch=seen.append)
    assert sum(seen) == len(samples)
    low, high = ranges["r"].range_value  # the Conv+Relu output
    assert low <= 0.0 < high


def test_chunks_cover_every_sample_once_with_equal_batches_per_call() -> None:
    spans = list(_chunks(total=70, chunk=64, batch_size=8))
    assert spans == [(0, 64), (64, 70)]
    covered = [i for lo, hi in spans for i in range(lo, hi)]
    assert covered == list(range(70))


def test_int8_model_has_symmetric_per_channel_weights_and_int32_bias(tiny_model: Path, tmp_path: Path) -> None:
    prepared = prepare_model(tiny_model, tmp_path)
    samples = ArraySampleSet({"x": tiny_data(32)}, None, "mem")
    out = tmp_path / "tiny.int8.onnx"
    write_qdq_model(prepared.path, calibrate(prepared.path, samples, Method.MINMAX, batch_size=8), out)
    model = onnx.load(str(out))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weight = next(v for k, v in inits.items() if k.startswith("conv_w") and k.endswith("_quantized"))
    scales = next(v for k, v in inits.items() if k.startswith("conv_w") and k.endswith("scale"))
    assert weight.shape == (4, 1, 3, 3)
    assert scales.shape == (4,)
    # symmetric weights: their all-zero zero points are left implicit (ONNX's default)
    weight_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0].startswith("conv_w"))
    assert len(weight_dq.input) == 2
    assert any(v.dtype == np.int32 for k, v in inits.items() if k.startswith("conv_b"))
    # on data inside the calibrated ranges, exact int8 math (QDQ left unfused) stays close to fp32
    x = tiny_data(8, seed=1)
    ref = ort.InferenceSession(str(tiny_model)).run(None, {"x": x})[0]
    basic = ort.SessionOptions()
    basic.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    got = ort.InferenceSession(str(out), basic).run(None, {"x": x})[0]
    assert np.max(np.abs(ref - got)) < 0.03 * np.max(np.abs(ref))
