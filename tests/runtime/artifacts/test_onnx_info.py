"""ONNX inspection: parameters, MACs, dynamic dims and QDQ quantization on models with hand-worked counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_model
from tests.runtime.artifacts.artifact_models import (
    CONV_MODEL_MACS,
    CONV_MODEL_PARAMS,
    QDQ_MODEL_PARAMS,
    QDQ_MODEL_WEIGHT_BYTES,
    SEQUENCE_MODEL_MACS,
    SEQUENCE_MODEL_PARAMS,
    onnx_conv_model,
    onnx_qdq_model,
    onnx_sequence_model,
)
from wedge.runtime.artifacts import inspect_model


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_conv_convtranspose_and_gemm_macs_and_params_match_the_hand_count(tmp_path: Path) -> None:
    info = inspect_model(_write(tmp_path, "conv.onnx", onnx_conv_model()))
    assert info.format == "onnx"
    assert info.macs == CONV_MODEL_MACS
    assert info.param_count == CONV_MODEL_PARAMS  # the int64 reshape target is not a parameter
    assert info.weight_bytes == CONV_MODEL_PARAMS * 4
    assert info.opset == 13
    assert not info.quantized
    assert info.op_histogram == {"Conv": 2, "ConvTranspose": 1, "Gemm": 1, "Reshape": 1}
    assert info.size_bytes == (tmp_path / "conv.onnx").stat().st_size


def test_conv1d_and_batched_matmul_count_per_sample_with_the_dynamic_batch_named(tmp_path: Path) -> None:
    info = inspect_model(_write(tmp_path, "seq.onnx", onnx_sequence_model()))
    assert info.macs == SEQUENCE_MODEL_MACS
    assert info.param_count == SEQUENCE_MODEL_PARAMS
    assert info.inputs[0].shape == ("batch", 8, 16)
    assert [spec.shape for spec in info.outputs] == [("batch", 6, 5), ("batch", 6, 6)]
    assert any("batch" in note for note in info.notes)


def test_qdq_model_counts_int8_weights_not_scales_and_reports_io_quantization(tmp_path: Path) -> None:
    info = inspect_model(_write(tmp_path, "qdq.onnx", onnx_qdq_model()))
    assert info.quantized
    assert info.param_count == QDQ_MODEL_PARAMS
    assert info.weight_bytes == QDQ_MODEL_WEIGHT_BYTES
    assert info.macs == 12
    (x,) = info.inputs
    assert x.dtype == np.float32
    assert x.quant is not None
    assert (x.quant.scales, x.quant.zero_points) == ((pytest.approx(0.02),), (3,))
    (y,) = info.outputs
    assert y.quant is not None
    assert (y.quant.scales, y.quant.zero_points) == ((pytest.approx(0.05),), (-2,))


def test_to_dict_is_plain_json(tmp_path: Path) -> None:
    info = inspect_model(_write(tmp_path, "qdq.onnx", onnx_qdq_model()))
    data = json.loads(json.dumps(info.to_dict()))
    assert data["inputs"][0]["quant"]["zero_points"] == [3]
    assert data["inputs"][0]["dtype"] == "float32"
    assert data["param_count"] == QDQ_MODEL_PARAMS


@pytest.mark.parametrize(
    ("onnx_name", "tflite_name"),
    [
        ("vww_96_float.onnx", "vww_96_float.tflite"),
        ("pretrainedResnet.onnx", "pretrainedResnet.tflite"),
        ("ad01_fp32.onnx", "ad01_fp32.tflite"),
    ],
)
def test_a_converted_model_counts_the_same_macs_and_params_as_its_tflite(onnx_name: str, tflite_name: str) -> None:
    onnx_info = inspect_model(shared_model(onnx_name))
    tflite_info = inspect_model(shared_model(tflite_name))
    assert onnx_info.macs == tflite_info.macs > 0
    assert onnx_info.param_count == tflite_info.param_count > 0
    assert onnx_info.opset == 11
