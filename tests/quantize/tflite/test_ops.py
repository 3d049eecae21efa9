"""Each ONNX op lowers to the TFLite ops it should, and the .tflite computes what onnxruntime computes.

Every case is a small float graph quantized by the real pipeline stages, so the QDQ patterns are ORT's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as schema
from onnx import helper

from tests.quantize.tflite.tflite_models import graph_model, init, lower_and_validate, quantize, weights
from wedge.quantize.tflite.errors import ExportError
from wedge.runtime.artifacts.tflite_flatbuffer import read_tflite

N = helper.make_node
IMAGE = {"x": [1, 4, 8, 8]}


def _conv1x1(out: str = "c", source: str = "x", seed: int = 1) -> tuple[onnx.NodeProto, onnx.TensorProto]:
    return N("Conv", [source, f"w{seed}"], [out], kernel_shape=[1, 1]), init(f"w{seed}", weights([4, 4, 1, 1], seed))


def _after_conv(nodes: list[onnx.NodeProto], extra: tuple[onnx.TensorProto, ...] = ()) -> onnx.ModelProto:
    """ORT quantizes value-moving ops only behind a quantized op: put a 1x1 conv first."""
    conv, w = _conv1x1()
    return graph_model([conv, *nodes], IMAGE, [nodes[-1].output[0]], [w, *extra])


def _f32(value: float) -> np.ndarray:
    return np.array(value, np.float32)


# name -> (float model, TFLite ops the lowering must use)
CASES: dict[str, tuple[Callable[[], onnx.ModelProto], set[str]]] = {
    "conv_same_padding_stride_2": (lambda: graph_model(
        [N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1], strides=[2, 2])], IMAGE, ["y"],
        [init("w", weights([6, 4, 3, 3], 1)), init("b", weights([6], 2, 0.1))]), {"CONV_2D"}),
    "conv_uneven_pads_dilated": (lambda: graph_model(
        [N("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[2, 1, 0, 1], dilations=[2, 2])], IMAGE, ["y"],
        [init("w", weights([6, 4, 3, 3], 1))]), {"PADV2", "CONV_2D"}),
    "depthwise": (lambda: graph_model(
        [N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4)], IMAGE, ["y"],
        [init("w", weights([4, 1, 3, 3], 1)), init("b", weights([4], 2, 0.1))]), {"DEPTHWISE_CONV_2D"}),
    "depthwise_multiplier_2": (lambda: graph_model(
        [N("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4)], IMAGE, ["y"],
        [init("w", weights([8, 1, 3, 3], 1))]), {"DEPTHWISE_CONV_2D"}),
    "grouped_conv": (lambda: graph_model(
        [N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2)], IMAGE, ["y"],
        [init("w", weights([6, 2, 3, 3], 1)), init("b", weights([6], 2, 0.1))]), {"SPLIT", "CONV_2D", "CONCATENATION"}),
    "conv_1d": (lambda: graph_model(
        [N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[5], pads=[2, 2], strides=[2]), N("Relu", ["c"], ["y"])],
        {"x": [1, 3, 40]}, ["y"], [init("w", weights([6, 3, 5], 1)), init("b", weights([6], 2, 0.1))]),
        {"CONV_2D"}),
    "gemm_weights_not_transposed": (lambda: graph_model(
        [N("Gemm", ["x", "w", "b"], ["y"])], {"x": [1, 12]}, ["y"],
        [init("w", weights([12, 5], 1)), init("b", weights([5], 2, 0.1))]), {"FULLY_CONNECTED"}),
    "matmul_rank_3": (lambda: graph_model(
        [N("MatMul", ["x", "w"], ["y"])], {"x": [1, 6, 12]}, ["y"], [init("w", weights([12, 5], 1))]),
        {"FULLY_CONNECTED"}),
    "add_and_mul_of_activations": (lambda: _after_conv(
        [N("Add", ["x", "c"], ["a"]), N("Mul", ["a", "c"], ["y"])]), {"ADD", "MUL"}),
    "add_constant": (lambda: graph_model(
        [N("Add", ["x", "k"], ["y"])], IMAGE, ["y"], [init("k", weights([4, 1, 1], 5))]), {"ADD"}),
    "sub_between_convs": (lambda: graph_model(
        [_conv1x1()[0], N("Sub", ["c", "x"], ["s"]), _conv1x1("y", "s", 2)[0]], IMAGE, ["y"],
        [_conv1x1()[1], _conv1x1(seed=2)[1]]), {"SUB", "CONV_2D"}),
    "clip_0_6_after_conv": (lambda: _after_conv(
        [N("Clip", ["c", "lo", "hi"], ["y"])], (init("lo", _f32(0)), init("hi", _f32(6)))), {"CONV_2D"}),
    "clip_other_range": (lambda: _after_conv(
        [N("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), N("Clip", ["p", "lo", "hi"], ["y"])],
        (init("lo", _f32(-0.5)), init("hi", _f32(1.0)))), {"MAX_POOL_2D"}),
    "relu_after_average_pool": (lambda: _after_conv(
        [N("AveragePool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), N("Relu", ["p"], ["y"])]),
        {"DEPTHWISE_CONV_2D"}),
    "sigmoid_and_tanh": (lambda: _after_conv(
        [N("Sigmoid", ["c"], ["s"]), N("Tanh", ["c"], ["t"]), N("Add", ["s", "t"], ["y"])]),
        {"LOGISTIC", "TANH", "ADD"}),
    "softmax": (lambda: graph_model(
        [N("Gemm", ["x", "w", "b"], ["g"], transB=1), N("Softmax", ["g"], ["y"], axis=-1)], {"x": [1, 12]}, ["y"],
        [init("w", weights([5, 12], 1)), init("b", weights([5], 2, 0.1))]), {"FULLY_CONNECTED", "SOFTMAX"}),
    "max_pool_padded": (lambda: _after_conv(
        [N("MaxPool", ["c"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]),
        {"PADV2", "MAX_POOL_2D"}),
    "average_pool_same": (lambda: _after_conv(
        [N("AveragePool", ["c"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]), {"AVERAGE_POOL_2D"}),
    "global_average_pool_then_gemm": (lambda: graph_model(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), N("GlobalAveragePool", ["c"], ["g"]),
         N("Flatten", ["g"], ["f"]), N("Gemm", ["f", "fw"], ["y"], transB=1)], IMAGE, ["y"],
        [init("w", weights([6, 4, 3, 3], 1)), init("fw", weights([3, 6], 2))]),
        {"DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}),
    "reduce_mean_over_space": (lambda: _after_conv(
        [N("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=0)]), {"MEAN"}),
    "transpose_then_reshape": (lambda: _after_conv(
        [N("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]), N("Reshape", ["t", "s"], ["y"])],
        (init("s", np.array([1, -1], np.int64)),)), {"RESHAPE"}),
    "concat_channels": (lambda: graph_model(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]), N("Concat", ["x", "c"], ["y"], axis=1)], IMAGE, ["y"],
        [init("w", weights([4, 4, 1, 1], 1, 2.0))]), {"CONCATENATION"}),
    "pad": (lambda: _after_conv(
        [N("Pad", ["c", "p"], ["y"])], (init("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),)), {"PADV2"}),
    "conv_1d_flatten_softmax": (lambda: graph_model(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[3]), N("Flatten", ["c"], ["f"]), N("Softmax", ["f"], ["y"])],
        {"x": [1, 3, 10]}, ["y"], [init("w", weights([4, 3, 3], 1))]), {"RESHAPE", "TRANSPOSE", "SOFTMAX"}),
    "reshape_to_image_then_conv": (lambda: graph_model(
        [N("Gemm", ["x", "g"], ["h"], transB=1), N("Reshape", ["h", "s"], ["r"]),
         N("Conv", ["r", "w"], ["y"], kernel_shape=[3, 3])], {"x": [1, 8]}, ["y"],
        [init("g", weights([48, 8], 1)), init("s", np.array([1, 3, 4, 4], np.int64)),
         init("w", weights([2, 3, 3, 3], 2))]), {"RESHAPE", "TRANSPOSE", "CONV_2D"}),
    "squeeze_unsqueeze": (lambda: _after_conv(
        [N("GlobalAveragePool", ["c"], ["g"]), N("Squeeze", ["g", "a"], ["s"]), N("Unsqueeze", ["s", "a1"], ["y"])],
        (init("a", np.array([2, 3], np.int64)), init("a1", np.array([1], np.int64)))), {"RESHAPE"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_lowers_to_tflite_that_agrees_with_onnxruntime(case: str, tmp_path: Path) -> None:
    build, expected_ops = CASES[case]
    qdq, samples = quantize(build(), tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert expected_ops <= set(lowered.op_histogram), lowered.op_histogram
    assert validation.passed, validation.problems
    litert, tflm = validation.runtime("litert"), validation.runtime("tflm")
    # LiteRT rescales in float like onnxruntime: at most one quantum apart.
    assert litert.max_quanta_diff <= 1
    # TFLM's fixed-point rescaling rounds twice now and then; amplified by later layers, rarely further.
    assert tflm.within_one_quantum_pct >= 97.0
    assert tflm.sqnr_db >= 25.0


def test_flatten_before_a_dense_layer_permutes_its_weights_instead_of_transposing(tmp_path: Path) -> None:
    model = graph_model(
        [N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3]), N("Relu", ["c"], ["r"]), N("Flatten", ["r"], ["f"]),
         N("Gemm", ["f", "fw", "fb"], ["y"], transB=1)], IMAGE, ["y"],
        [init("w", weights([5, 4, 3, 3], 1)), init("b", weights([5], 2, 0.1)), init("fw", weights([7, 180], 3, 0.1)),
         init("fb", weights([7], 4, 0.1))])  # fmt: skip
    qdq, samples = quantize(model, tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert "TRANSPOSE" not in lowered.op_histogram
    assert lowered.inputs[0].tflite_shape == (1, 8, 8, 4)
    # Any column order other than NHWC's would scramble the dense layer: the results would not be exact.
    assert validation.runtime("litert").identical_pct == 100.0


def test_flatten_read_by_softmax_transposes_back_to_onnx_order(tmp_path: Path) -> None:
    model = graph_model(
        [N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), N("Flatten", ["c"], ["f"]), N("Softmax", ["f"], ["y"])],
        IMAGE, ["y"], [init("w", weights([2, 4, 3, 3], 1))])
    qdq, samples = quantize(model, tmp_path)
    lowered, validation = lower_and_validate(qdq, samples)
    assert lowered.op_histogram.get("TRANSPOSE") == 1
    assert validation.runtime("litert").max_quanta_diff <= 1


def test_an_op_without_lowering_names_the_node_the_op_and_what_to_do(tmp_path: Path) -> None:
    model = graph_model([_conv1x1()[0], N("Hardmax", ["c"], ["e"], name="my_hardmax", axis=1),
                         _conv1x1("y", "e", 2)[0]], IMAGE, ["y"], [_conv1x1()[1], _conv1x1(seed=2)[1]])
    qdq, samples = quantize(model, tmp_path)
    with pytest.raises(ExportError, match=r"node 'my_hardmax' \(Hardmax\): TFLite export has no lowering for "
                                          r"Hardmax; keep it float \(--keep-float my_hardmax or Hardmax\), replace "
                                          r"it in the model, or deploy the int8 ONNX"):
        lower_and_validate(qdq, samples)


def test_float_io_adds_quantize_and_dequantize_at_the_edges(tmp_path: Path) -> None:
    conv, w = _conv1x1()
    qdq, samples = quantize(graph_model([conv], IMAGE, ["c"], [w]), tmp_path)
    lowered, validation = lower_and_validate(qdq, samples, io="float")
    assert lowered.op_histogram["QUANTIZE"] == 1 and lowered.op_histogram["DEQUANTIZE"] == 1
    assert lowered.inputs[0].dtype == np.float32 and lowered.outputs[0].dtype == np.float32
    assert validation.runtime("litert").max_quanta_diff <= 1


def _conv_relu_qdq(path: Path, relu_scale: float) -> Path:
    """Conv -> Q/DQ -> Relu -> Q/DQ by hand (ORT drops such a Relu; other QDQ writers keep it)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (3, 2, 3, 3)).astype(np.int8)
    nodes = [N("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), N("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             N("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             N("Conv", ["xd", "wd"], ["c"], kernel_shape=[3, 3], name="conv"),
             N("QuantizeLinear", ["c", "cs", "cz"], ["cq"]), N("DequantizeLinear", ["cq", "cs", "cz"], ["cd"]),
             N("Relu", ["cd"], ["r"], name="relu"),
             N("QuantizeLinear", ["r", "rs", "cz"], ["rq"]), N("DequantizeLinear", ["rq", "rs", "cz"], ["y"])]
    inits = [init("xs", np.float32(0.02)), init("xz", np.int8(0)), init("w", w),
             init("ws", np.full(3, 0.004, np.float32)), init("wz", np.zeros(3, np.int8)),
             init("cs", np.float32(0.03)), init("cz", np.int8(-20)), init("rs", np.float32(relu_scale))]
    onnx.save(graph_model(nodes, {"x": [1, 2, 6, 6]}, ["y"], inits), str(path))
    return path


def test_a_relu_on_the_same_grid_fuses_into_the_conv_exactly(tmp_path: Path) -> None:
    qdq = _conv_relu_qdq(tmp_path / "m.onnx", relu_scale=0.03)
    samples = {"x": np.random.default_rng(0).normal(0, 1, (16, 2, 6, 6)).astype(np.float32)}
    lowered, validation = lower_and_validate(qdq, samples)
    assert lowered.op_histogram == {"CONV_2D": 1}
    conv = read_tflite(lowered.data, "m").subgraphs[0].operators[0]
    assert conv.builtinOptions.fusedActivationFunction == schema.ActivationFunctionType.RELU
    assert validation.runtime("litert").max_quanta_diff == 0


def test_a_relu_that_changes_the_grid_stays_an_op(tmp_path: Path) -> None:
    qdq = _conv_relu_qdq(tmp_path / "m.onnx", relu_scale=0.05)
    samples = {"x": np.random.default_rng(0).normal(0, 1, (16, 2, 6, 6)).astype(np.float32)}
    lowered, validation = lower_and_validate(qdq, samples)
    assert lowered.op_histogram == {"CONV_2D": 1, "RELU": 1}
    assert validation.runtime("litert").max_quanta_diff <= 1
