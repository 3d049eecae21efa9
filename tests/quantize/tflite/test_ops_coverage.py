"""The ops modern mobile nets add (HardSwish, Div-by-6, Resize, ConvTranspose, BatchNorm, Gather, the pieces of a
decomposed LayerNorm and Gelu) lower to TFLite ops that agree with onnxruntime's int8 within one quantum.

Each case is a small float graph quantized as `wedge quantize --format tflite` does, then run in LiteRT and TFLM.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from tests.quantize.tflite.tflite_models import graph_model, init, lower_and_validate, quantize, weights

N = helper.make_node
IMAGE = {"x": [1, 4, 8, 8]}


def _f32(value: float | list[float]) -> np.ndarray:
    return np.array(value, np.float32)


def _after_conv(nodes: list[onnx.NodeProto], extra: tuple[onnx.TensorProto, ...] = (), *,
                shape: dict[str, list[int | str]] | None = None) -> onnx.ModelProto:
    """A 1x1 conv first, as in a real net: onnxruntime quantizes value-moving ops only behind a quantized op."""
    conv = N("Conv", ["x", "w0"], ["c"], kernel_shape=[1, 1])
    return graph_model([conv, *nodes], shape or IMAGE, [nodes[-1].output[0]],
                       [init("w0", weights([4, 4, 1, 1], 1)), *extra])


def _resize(mode: str, coordinates: str, nearest: str = "round_prefer_floor",
            scales: tuple[float, float] = (2.0, 2.0)) -> onnx.ModelProto:
    return _after_conv([N("Resize", ["c", "", "s"], ["y"], mode=mode, coordinate_transformation_mode=coordinates,
                          nearest_mode=nearest)], (init("s", _f32([1, 1, *scales])),))


def _transposed(kernel: int, stride: int, pads: list[int], output_padding: list[int] | None = None,
                rank: int = 4) -> onnx.ModelProto:
    attrs: dict[str, object] = {"kernel_shape": [kernel] * (rank - 2), "strides": [stride] * (rank - 2),
                                "pads": pads}
    if output_padding:
        attrs["output_padding"] = output_padding
    shape = IMAGE if rank == 4 else {"x": [1, 4, 12]}
    return graph_model([N("ConvTranspose", ["x", "wt", "bt"], ["y"], **attrs)], shape, ["y"],
                       [init("wt", weights([4, 3] + [kernel] * (rank - 2), 2)), init("bt", weights([3], 3, 0.1))])


def _layer_norm_decomposed() -> onnx.ModelProto:
    """PaddleOCR's SVTR spelling of LayerNorm over the last axis: mean, centre, square, mean, +eps, sqrt, divide."""
    nodes = [N("MatMul", ["x", "w"], ["h"]), N("ReduceMean", ["h"], ["mu"], axes=[-1]), N("Sub", ["h", "mu"], ["d"]),
             N("Pow", ["d", "two"], ["sq"]), N("ReduceMean", ["sq"], ["var"], axes=[-1]),
             N("Add", ["var", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]), N("Div", ["d", "sd"], ["n"]),
             N("Mul", ["n", "g"], ["ng"]), N("Add", ["ng", "b"], ["y"])]
    return graph_model(nodes, {"x": [1, 6, 8]}, ["y"],
                       [init("w", weights([8, 8], 1)), init("two", _f32(2.0)), init("eps", _f32(1e-5)),
                        init("g", weights([8], 2, 0.3) + 1), init("b", weights([8], 3, 0.1))])


def _single(node: onnx.NodeProto, extra: tuple[onnx.TensorProto, ...] = (), opset: int = 13) -> onnx.ModelProto:
    """One op on the (quantized) graph input: nothing before it to round differently."""
    return graph_model([node], IMAGE, [node.output[0]], list(extra), opset=opset)


# name -> (float model of one op, TFLite ops its lowering must use): at most one quantum apart in both runtimes
CASES: dict[str, tuple[Callable[[], onnx.ModelProto], set[str]]] = {
    "hard_sigmoid_paddle_slope": (lambda: _single(N("HardSigmoid", ["x"], ["y"], alpha=0.2, beta=0.5)), {"GATHER"}),
    "div_by_6": (lambda: _single(N("Div", ["x", "six"], ["y"]), (init("six", _f32(6)),)), {"MUL"}),
    "scalar_over_activation": (lambda: _single(N("Div", ["one", "x"], ["y"]), (init("one", _f32(1)),)), {"GATHER"}),
    "div_by_activation": (lambda: graph_model(  # zero divisors too: the table saturates as onnxruntime does
        [N("Div", ["x", "d"], ["y"])], {"x": [1, 4, 8, 8], "d": [1, 4, 8, 8]}, ["y"]), {"CAST", "MUL", "GATHER"}),
    "div_per_channel_constant": (lambda: _single(
        N("Div", ["x", "k"], ["y"]), (init("k", np.array([[[1.5]], [[2.0]], [[-3.0]], [[4.0]]], np.float32)),)),
        {"MUL"}),
    "constant_minus_activation": (lambda: _single(N("Sub", ["one", "x"], ["y"]), (init("one", _f32(1)),)), {"SUB"}),
    "exp": (lambda: _single(N("Exp", ["x"], ["y"])), {"GATHER"}),
    "sqrt_of_abs": (lambda: graph_model([N("Abs", ["x"], ["a"]), N("Sqrt", ["a"], ["y"])], IMAGE, ["y"]),
                    {"GATHER"}),
    "erf": (lambda: _single(N("Erf", ["x"], ["y"])), {"GATHER"}),
    "batch_norm": (lambda: _single(
        N("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3),
        (init("g", _f32([1.5, -0.5, 0.8, 2.0])), init("b", _f32([0.1, 0.2, -0.3, 0.0])),
         init("m", _f32([0.2, -0.1, 0.0, 0.5])), init("v", _f32([0.5, 1.2, 0.9, 2.0])))), {"DEPTHWISE_CONV_2D"}),
    "conv_transpose_k2_s2": (lambda: _transposed(2, 2, [0, 0, 0, 0]), {"TRANSPOSE_CONV"}),
    "conv_transpose_k4_s2_p1": (lambda: _transposed(4, 2, [1, 1, 1, 1]), {"TRANSPOSE_CONV"}),
    "conv_transpose_k3_s2_p1_output_padding": (lambda: _transposed(3, 2, [1, 1, 1, 1], [1, 1]),
                                               {"TRANSPOSE_CONV"}),
    "conv_transpose_uneven_pads_sliced": (lambda: _transposed(3, 2, [2, 0, 0, 1]), {"TRANSPOSE_CONV", "SLICE"}),
    "conv_transpose_1d": (lambda: _transposed(3, 2, [1, 1], rank=3), {"TRANSPOSE_CONV"}),
    "pow_2": (lambda: graph_model([N("Conv", ["x", "w0"], ["c"], kernel_shape=[1, 1]), N("Pow", ["c", "two"], ["p"]),
                                   N("Conv", ["p", "w1"], ["y"], kernel_shape=[1, 1])], IMAGE, ["y"],
                                  [init("w0", weights([4, 4, 1, 1], 1)), init("two", _f32(2)),
                                   init("w1", weights([4, 4, 1, 1], 5))]), {"GATHER"}),
    "mean_of_last_axis": (lambda: graph_model([N("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=1)],
                                              {"x": [1, 6, 20]}, ["y"]), {"FULLY_CONNECTED"}),
    "mean_of_inner_axis": (lambda: graph_model([N("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)],
                                               {"x": [1, 6, 20]}, ["y"]), {"BATCH_MATMUL"}),
    "gather_channels": (lambda: _after_conv([N("Gather", ["c", "i"], ["y"], axis=1)],
                                            (init("i", np.array([3, 0], np.int64)),)), {"GATHER"}),
    "gather_one_row": (lambda: graph_model(
        [N("MatMul", ["x", "w"], ["h"]), N("Gather", ["h", "i"], ["y"], axis=1)], {"x": [1, 5, 6]}, ["y"],
        [init("w", weights([6, 4], 1)), init("i", np.array(-1, np.int64))]), {"GATHER"}),
    "resize_nearest_asymmetric_floor": (lambda: _resize("nearest", "asymmetric", "floor"),
                                        {"RESIZE_NEAREST_NEIGHBOR"}),
    "resize_nearest_half_pixel": (lambda: _resize("nearest", "half_pixel"), {"RESIZE_NEAREST_NEIGHBOR"}),
    "resize_bilinear_half_pixel": (lambda: _resize("linear", "half_pixel"), {"RESIZE_BILINEAR"}),
    "resize_bilinear_align_corners": (lambda: _resize("linear", "align_corners"), {"RESIZE_BILINEAR"}),
    "resize_bilinear_pytorch_half_pixel_down": (lambda: _resize("linear", "pytorch_half_pixel", scales=(0.5, 0.5)),
                                                {"RESIZE_BILINEAR"}),
}

# Chains of int8 ops as exporters write them: each op rounds, and TFLM's fixed-point rescale now and then rounds
# a quantum differently; the next op can amplify that (a division by a small deviation, a steep slope).
COMPOSITES: dict[str, tuple[Callable[[], onnx.ModelProto], set[str]]] = {
    "hard_swish_as_div_by_6": (lambda: _after_conv(
        [N("Add", ["c", "three"], ["a"]), N("Clip", ["a", "lo", "hi"], ["r"]), N("Mul", ["c", "r"], ["m"]),
         N("Div", ["m", "six"], ["y"])],
        (init("three", _f32(3)), init("lo", _f32(0)), init("hi", _f32(6)), init("six", _f32(6)))), {"MUL"}),
    "hard_swish_as_mul_by_sixth": (lambda: _after_conv(
        [N("HardSigmoid", ["c"], ["h"], alpha=1 / 6, beta=0.5), N("Mul", ["c", "h"], ["y"])]),
        {"DEPTHWISE_CONV_2D", "MUL"}),  # on channel-last data the output grid clamps: no table
    "gelu_with_erf": (lambda: _after_conv(
        [N("Div", ["c", "r2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
         N("Mul", ["c", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])],
        (init("r2", _f32(np.sqrt(2))), init("one", _f32(1)), init("half", _f32(0.5)))), {"GATHER", "MUL"}),
    "layer_norm_decomposed": (_layer_norm_decomposed, {"FULLY_CONNECTED", "SUB", "GATHER", "MUL", "ADD"}),
}


@pytest.mark.parametrize("case", [*sorted(CASES), *sorted(COMPOSITES)])
def test_op_lowers_to_tflite_that_agrees_with_onnxruntime(case: str, tmp_path: Path) -> None:
    single = case in CASES
    build, expected_ops = CASES[case] if single else COMPOSITES[case]
    qdq, samples = quantize(build(), tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert expected_ops <= set(lowered.op_histogram), lowered.op_histogram
    assert validation.passed, validation.problems
    for runtime in ("litert", "tflm"):
        agreement = validation.runtime(runtime)
        if single:  # one op: identical, or one quantum apart
            assert agreement.max_quanta_diff <= 1, (runtime, agreement)
        else:
            assert agreement.within_one_quantum_pct >= 95.0 and agreement.sqnr_db >= 30.0, (runtime, agreement)


def test_hard_swish_lowers_as_the_hard_sigmoid_and_mul_onnxruntime_splits_it_into(tmp_path: Path) -> None:
    qdq, samples = quantize(_single(N("HardSwish", ["x"], ["y"]), opset=14), tmp_path)
    assert [n.op_type for n in onnx.load(str(qdq)).graph.node if "Linear" not in n.op_type] == ["HardSigmoid", "Mul"]
    lowered, validation = lower_and_validate(qdq, samples)
    assert "MUL" in lowered.op_histogram
    for runtime in ("litert", "tflm"):
        assert validation.runtime(runtime).max_quanta_diff <= 1


def test_a_table_is_exactly_what_onnxruntime_computes(tmp_path: Path) -> None:
    qdq, samples = quantize(_single(N("Exp", ["x"], ["y"])), tmp_path)
    _, validation = lower_and_validate(qdq, samples)
    assert validation.runtime("litert").identical_pct == 100.0
    assert validation.runtime("tflm").identical_pct == 100.0


def test_a_node_kept_float_is_a_float_island_between_dequantize_and_quantize(tmp_path: Path) -> None:
    from wedge.quantize.calibrate import Method, calibrate
    from wedge.quantize.calibration import ArraySampleSet
    from wedge.quantize.load import prepare_model
    from wedge.quantize.plan import TFLITE_OP_TYPES, QuantPlan
    from wedge.quantize.static import write_qdq_model
    from wedge.quantize.tflite.convert import lower_graph
    from wedge.quantize.tflite.graph import read_qdq
    from wedge.quantize.tflite.validate import validate_tflite

    model = graph_model([N("Conv", ["x", "w0"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="first"),
                         N("Relu", ["c"], ["r"]),
                         N("Conv", ["r", "w1"], ["d"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="sensitive"),
                         N("Conv", ["d", "w2"], ["y"], kernel_shape=[1, 1], name="last")], IMAGE, ["y"],
                        [init("w0", weights([4, 4, 3, 3], 1)), init("w1", weights([6, 4, 3, 3], 2)),
                         init("w2", weights([3, 6, 1, 1], 3))])
    source = tmp_path / "m.onnx"
    onnx.save(model, str(source))
    prepared = prepare_model(source, tmp_path)
    rng = np.random.default_rng(0)
    calib = ArraySampleSet({"x": rng.normal(size=(32, 4, 8, 8)).astype(np.float32)}, None, "calib")
    plan = QuantPlan(TFLITE_OP_TYPES, ("sensitive",))
    qdq = tmp_path / "m.int8.onnx"
    write_qdq_model(prepared.path, calibrate(prepared.path, calib, Method.MINMAX, batch_size=1), qdq, plan)
    kept = next(n for n in onnx.load(str(qdq)).graph.node if n.name == "sensitive")
    assert all("DequantizeLinear" not in i for i in kept.input[1:])  # its weights stay float in the ONNX too
    lowered = lower_graph(read_qdq(qdq, plan.float_nodes))
    assert lowered.op_histogram["DEQUANTIZE"] == 1 and lowered.op_histogram["QUANTIZE"] == 1
    samples = {"x": rng.normal(size=(24, 4, 8, 8)).astype(np.float32)}
    validation = validate_tflite(qdq, lowered.data, lowered, samples, arena_bytes=2 * 1024 * 1024)
    assert validation.passed, validation.problems
    assert validation.runtime("litert").identical_pct == 100.0  # float math both sides, then one rounding
    assert validation.runtime("tflm").within_one_quantum_pct >= 99.0  # its int8 convs round twice at times


def test_a_softmax_over_more_classes_than_tflm_int8_takes_runs_in_float(tmp_path: Path) -> None:
    model = graph_model([N("Softmax", ["x"], ["y"], axis=-1)], {"x": [1, 3, 600]}, ["y"])
    qdq, samples = quantize(model, tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert lowered.op_histogram == {"DEQUANTIZE": 1, "SOFTMAX": 1, "QUANTIZE": 1}
    assert validation.passed, validation.problems
    for runtime in ("litert", "tflm"):
        assert validation.runtime(runtime).max_quanta_diff <= 1


def test_attention_products_and_slices_lower_to_batch_matmul_and_strided_slice(tmp_path: Path) -> None:
    model = graph_model([N("MatMul", ["x", "w"], ["qkv"]), N("Slice", ["qkv", "s0", "e0", "ax"], ["q"]),
                         N("Slice", ["qkv", "s1", "e1", "ax"], ["k"]), N("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
                         N("MatMul", ["q", "kt"], ["y"])], {"x": [1, 5, 8]}, ["y"],
                        [init("w", weights([8, 12], 1)), init("s0", np.array([0], np.int64)),
                         init("e0", np.array([6], np.int64)), init("s1", np.array([6], np.int64)),
                         init("e1", np.array([12], np.int64)), init("ax", np.array([2], np.int64))])
    qdq, samples = quantize(model, tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert {"STRIDED_SLICE", "BATCH_MATMUL"} <= set(lowered.op_histogram)
    assert validation.passed, validation.problems
    for runtime in ("litert", "tflm"):
        assert validation.runtime(runtime).max_quanta_diff <= 1
