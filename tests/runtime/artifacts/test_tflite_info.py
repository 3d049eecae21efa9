"""TFLite inspection: op naming, parameters, MACs, quantization and TFLM support, without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_model
from tests.runtime.artifacts.artifact_models import TFLITE_MODEL_MACS, TFLITE_MODEL_PARAMS, tflite_shapes_model
from wedge.runtime.artifacts import inspect_model


@pytest.fixture
def shapes_model(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.tflite"
    path.write_bytes(tflite_shapes_model())
    return path


def test_macs_and_params_of_every_mac_heavy_op_match_the_hand_count(shapes_model: Path) -> None:
    info = inspect_model(shapes_model)
    assert info.format == "tflite"
    assert info.macs == TFLITE_MODEL_MACS
    assert info.param_count == TFLITE_MODEL_PARAMS  # int32 shape constants are not parameters
    assert info.weight_bytes == TFLITE_MODEL_PARAMS * 4
    assert info.opset is None


def test_op_names_come_from_the_larger_of_the_two_builtin_code_fields(shapes_model: Path) -> None:
    ops = inspect_model(shapes_model).op_histogram
    assert ops["CONV_2D"] == 1  # only deprecated_builtin_code set, as in old files
    assert ops["GELU"] == 1  # code >= 127, only builtin_code set
    assert "CUSTOM:MyPostProcess" in ops
    assert "ADD" not in ops and "PLACEHOLDER_FOR_GREATER_OP_CODES" not in ops


def test_ops_tflm_cannot_run_are_named_in_the_notes(shapes_model: Path) -> None:
    (note,) = inspect_model(shapes_model).notes
    assert "TFLite-Micro has no kernel for" in note
    for op in ("LOCAL_RESPONSE_NORMALIZATION", "GELU", "CUSTOM:MyPostProcess"):
        assert op in note
    assert "CONV_2D" not in note


def test_inputs_and_outputs_keep_the_subgraph_order(shapes_model: Path) -> None:
    info = inspect_model(shapes_model)
    assert [(s.name, s.shape) for s in info.inputs] == [("x", (1, 8, 8, 3)), ("a", (1, 16, 6))]
    assert [s.name for s in info.outputs] == ["gelu", "mm"]


@pytest.mark.parametrize(
    ("name", "macs_low", "macs_high"),
    [
        ("vww_96_float.tflite", 7.4e6, 7.6e6),  # MobileNetV1 0.25, 96x96: about 7.5 M MACs
        ("pretrainedResnet.tflite", 12.4e6, 12.6e6),  # ResNet-8 CIFAR-10: about 12.5 M MACs
    ],
)
def test_mlperf_tiny_models_have_their_published_mac_counts(name: str, macs_low: float, macs_high: float) -> None:
    info = inspect_model(shared_model(name))
    assert macs_low <= info.macs <= macs_high
    assert not info.quantized
    assert info.notes == ()


def test_the_int8_model_reports_its_quantization_and_the_float_models_params() -> None:
    int8 = inspect_model(shared_model("vww_96_int8.tflite"))
    float_ = inspect_model(shared_model("vww_96_float.tflite"))
    assert int8.quantized
    assert int8.macs == float_.macs
    assert int8.param_count == float_.param_count
    assert int8.weight_bytes < float_.weight_bytes / 3  # int8 weights, int32 biases
    (image,) = int8.inputs
    assert image.dtype == np.int8
    assert image.quant is not None
    assert image.quant.zero_points == (-128,)
    assert image.quant.scales[0] == pytest.approx(1 / 255)
