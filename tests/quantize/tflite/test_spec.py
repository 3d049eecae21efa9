"""The TFLite int8 spec in the written file: weights, biases, fixed output grids, shared grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.quantize.tflite.tflite_models import (
    graph_model,
    grid,
    init,
    lower_and_validate,
    quantize,
    tflite_ops,
    weights,
)
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.spec import bias_params, bias_values, check_weights, constant_params, same_params
from wedge.runtime.types import QuantParams

N = helper.make_node
IMAGE = {"x": [1, 4, 8, 8]}


def test_weights_are_symmetric_per_channel_and_bias_is_int32_at_input_times_weight_scale(tmp_path: Path) -> None:
    model = graph_model(
        [N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         N("Conv", ["c", "dw", "db"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6)], IMAGE, ["y"],
        [init("w", weights([6, 4, 3, 3], 1)), init("b", weights([6], 2, 0.1)), init("dw", weights([6, 1, 3, 3], 3)),
         init("db", weights([6], 4, 0.1))])  # fmt: skip
    qdq, samples = quantize(model, tmp_path)
    lowered, _ = lower_and_validate(qdq, samples)
    convs = [op for op in tflite_ops(lowered.data) if op[0] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert [op[0] for op in convs] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    for name, (x, w, b), _ in convs:
        x_scales, _, _ = grid(x)
        w_scales, w_zero_points, w_axis = grid(w)
        b_scales, b_zero_points, _ = grid(b)
        assert len(w_scales) == 6 and set(w_zero_points) == {0}
        assert w_axis == (0 if name == "CONV_2D" else 3)
        assert b.type == 2  # INT32
        assert set(b_zero_points) == {0}
        assert np.allclose(b_scales, x_scales[0] * np.asarray(w_scales), rtol=1e-6)


@pytest.mark.parametrize(("onnx_op", "tflite_op", "scale", "zero_point"), [
    ("Sigmoid", "LOGISTIC", 1 / 256, -128),
    ("Tanh", "TANH", 1 / 128, 0),
    ("Softmax", "SOFTMAX", 1 / 256, -128),
])  # fmt: skip
def test_fixed_output_grids_are_used_and_requantized_to_onnx_where_it_differs(
        onnx_op: str, tflite_op: str, scale: float, zero_point: int, tmp_path: Path) -> None:
    model = graph_model([N("Gemm", ["x", "w"], ["g"], transB=1), N(onnx_op, ["g"], ["a"]),
                         N("Gemm", ["a", "w2"], ["y"], transB=1)], {"x": [1, 8]}, ["y"],
                        [init("w", weights([6, 8], 1)), init("w2", weights([3, 6], 2))])
    qdq, samples = quantize(model, tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    ops = tflite_ops(lowered.data)
    position = next(i for i, op in enumerate(ops) if op[0] == tflite_op)
    scales, zero_points, _ = grid(ops[position][2][0])
    assert scales == pytest.approx([scale]) and zero_points == [zero_point]
    follower = ops[position + 1]
    if follower[0] in ("QUANTIZE", "ADD"):  # ORT's grid for the activation differs: requantized onto it
        assert grid(follower[2][0])[0] != pytest.approx([scale])
    assert validation.passed


def test_max_pool_shares_its_input_grid(tmp_path: Path) -> None:
    model = graph_model([N("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
                         N("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], IMAGE, ["y"],
                        [init("w", weights([4, 4, 1, 1], 1))])
    qdq, samples = quantize(model, tmp_path)
    lowered, _ = lower_and_validate(qdq, samples)
    pool = next(op for op in tflite_ops(lowered.data) if op[0] == "MAX_POOL_2D")
    assert grid(pool[1][0])[:2] == grid(pool[2][0])[:2]


def test_asymmetric_or_float_weights_are_refused_with_the_fix() -> None:
    with pytest.raises(ExportError, match="quantized asymmetrically.*symmetric weights"):
        check_weights(QuantParams((0.1, 0.2), (0, 3), 0), "node 'c' (Conv)")
    with pytest.raises(ExportError, match="hybrid models are not supported"):
        check_weights(None, "node 'c' (Conv)")


def test_bias_on_another_grid_is_requantized_to_input_times_weight_scale() -> None:
    wanted = bias_params(0.5, np.array([0.01, 0.02]))
    assert wanted.scales == pytest.approx((0.005, 0.01))
    kept = bias_values(np.array([10, -20]), QuantParams((0.005, 0.01), (0, 0), 0), wanted, 2, "n")
    assert kept.tolist() == [10, -20]
    # Real bias 0.1 and -0.2 on a grid twice as fine: 20 and -20 codes at the wanted scales.
    moved = bias_values(np.array([40, -40]), QuantParams((0.0025, 0.005), (0, 0), 0), wanted, 2, "n")
    assert moved.tolist() == [20, -20]
    assert bias_values(None, None, wanted, 2, "n").tolist() == [0, 0]


def test_constant_grid_holds_the_extremes_and_zero() -> None:
    params = constant_params(np.array([-1.0, 3.0]))
    codes = params.quantize(np.array([-1.0, 0.0, 3.0]), np.int8)
    assert codes[0] == -128 and codes[2] == 127
    assert params.dequantize(codes)[1] == 0.0
    assert same_params(params, QuantParams(params.scales, params.zero_points))
    assert not same_params(params, QuantParams((params.scales[0] * 1.01,), params.zero_points))
