"""Reading int8 QDQ ONNX into the typed graph: what it pairs up, and the patterns it refuses by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.quantize.tflite.tflite_models import graph_model, init, lower_and_validate, quantize, weights
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import read_qdq

N = helper.make_node


def test_digits_reads_as_int8_compute_with_quantized_weights(digits_qdq: tuple[Path, dict]) -> None:
    qdq, _ = digits_qdq
    graph = read_qdq(qdq)
    assert [n.op_type for n in graph.nodes] == ["Conv", "Conv", "MaxPool", "Flatten", "Gemm", "Gemm"]
    assert [(io.name, graph.tensors[io.tensor].shape) for io in graph.inputs] == [("input", (1, 1, 8, 8))]
    assert [io.name for io in graph.outputs] == ["logits"]
    for node in graph.nodes:
        activation = graph.tensors[node.inputs[0]]
        assert activation.dtype == np.int8 and activation.quant is not None and not activation.quant.per_axis
        if node.op_type in ("Conv", "Gemm"):
            w, b = graph.tensors[node.inputs[1]], graph.tensors[node.inputs[2]]
            assert w.constant and w.dtype == np.int8 and w.quant is not None and set(w.quant.zero_points) == {0}
            assert b.constant and b.dtype == np.int32


def test_a_float_model_is_refused_with_what_to_export_instead(tmp_path: Path) -> None:
    path = tmp_path / "float.onnx"
    onnx.save(graph_model([N("Relu", ["x"], ["y"])], {"x": [1, 4]}, ["y"]), str(path))
    with pytest.raises(ExportError, match="no QuantizeLinear/DequantizeLinear: export the int8 QDQ model"):
        read_qdq(path)


def test_a_dynamic_dimension_past_the_batch_is_refused(digits_qdq: tuple[Path, dict], tmp_path: Path) -> None:
    model = onnx.load(str(digits_qdq[0]))
    height = model.graph.input[0].type.tensor_type.shape.dim[2]
    height.Clear()
    height.dim_param = "H"
    path = tmp_path / "dynamic.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match="'input' has a dynamic dimension at axis 2.*--input-shape"):
        read_qdq(path)


def _qdq_by_hand(path: Path, activation_scale: np.ndarray, dq_scale: float = 0.1) -> Path:
    nodes = [N("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
             N("DequantizeLinear", ["xq", "s2", "z"], ["xd"], name="dq_in"),
             N("Relu", ["xd"], ["r"], name="relu"),
             N("QuantizeLinear", ["r", "s3", "z3"], ["rq"]), N("DequantizeLinear", ["rq", "s3", "z3"], ["y"])]
    inits = [init("s", activation_scale), init("z", np.zeros(activation_scale.shape, np.int8)),
             init("s2", np.full(activation_scale.shape, dq_scale, np.float32)), init("s3", np.float32(0.1)),
             init("z3", np.int8(-128))]
    model = graph_model(nodes, {"x": [1, 2, 3]}, ["y"], inits)
    onnx.save(model, str(path))
    return path


def test_an_activation_quantized_per_channel_is_refused(tmp_path: Path) -> None:
    path = _qdq_by_hand(tmp_path / "m.onnx", np.array([0.1, 0.2], np.float32))
    with pytest.raises(ExportError, match="'q_in' \\(QuantizeLinear\\) quantizes an activation per channel"):
        read_qdq(path)


def test_a_dequantize_with_other_parameters_than_its_quantize_is_an_unknown_pattern(tmp_path: Path) -> None:
    path = _qdq_by_hand(tmp_path / "m.onnx", np.float32(0.1), dq_scale=0.3)
    with pytest.raises(ExportError, match="'dq_in'.*other parameters.*not one wedge can export"):
        read_qdq(path)


def test_uint8_activations_move_onto_the_int8_grid(tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    source = tmp_path / "m.onnx"
    onnx.save(graph_model([N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3])], {"x": [1, 2, 6, 6]}, ["y"],
                          [init("w", weights([3, 2, 3, 3], 1)), init("b", weights([3], 2, 0.1))]), str(source))
    rng = np.random.default_rng(0)
    batches = iter([{"x": rng.normal(size=(1, 2, 6, 6)).astype(np.float32)} for _ in range(8)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(batches, None)

    qdq = tmp_path / "m.uint8.onnx"
    quantize_static(str(source), str(qdq), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, extra_options={"WeightSymmetric": True})
    graph = read_qdq(qdq)
    assert all(graph.tensors[io.tensor].dtype == np.int8 for io in graph.inputs)
    samples = {"x": rng.normal(size=(16, 2, 6, 6)).astype(np.float32)}
    _, validation = lower_and_validate(qdq, samples)
    assert validation.runtime("litert").max_quanta_diff <= 1


def test_shape_arithmetic_of_a_dynamic_batch_export_is_folded(tmp_path: Path) -> None:
    model = graph_model([N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]), N("Reshape", ["c", "target"], ["f"]),
                         N("Gemm", ["f", "fw"], ["y"], transB=1)], {"x": ["N", 3, 6, 6]}, ["y"],
                        [init("w", weights([2, 3, 3, 3], 1)), init("target", np.array([-1, 32], np.int64)),
                         init("fw", weights([4, 32], 2))])
    qdq, samples = quantize(model, tmp_path)
    # Rewrite the flatten as PyTorch exports it with a dynamic batch: Shape -> Gather -> Unsqueeze -> Concat.
    edited = onnx.load(str(qdq))
    reshape = next(n for n in edited.graph.node if n.op_type == "Reshape")
    edited.graph.node.extend([
        N("Shape", [reshape.input[0]], ["shape"]), N("Gather", ["shape", "zero"], ["batch"], axis=0),
        N("Unsqueeze", ["batch", "axes"], ["batch1"]), N("Concat", ["batch1", "minus_one"], ["dynamic"], axis=0)])
    edited.graph.initializer.extend([init("zero", np.array(0, np.int64)), init("axes", np.array([0], np.int64)),
                                     init("minus_one", np.array([-1], np.int64))])
    reshape.input[1] = "dynamic"
    sorted_nodes = _topological(edited.graph.node)
    del edited.graph.node[:]
    edited.graph.node.extend(sorted_nodes)
    path = tmp_path / "dynamic_flatten.onnx"
    onnx.save(edited, str(path))
    graph = read_qdq(path)
    assert [n.op_type for n in graph.nodes] == ["Conv", "Reshape", "Gemm"]
    _, validation = lower_and_validate(path, samples)
    assert validation.runtime("litert").max_quanta_diff <= 1


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    made = {o for n in nodes for o in n.output}
    ready: set[str] = set()
    ordered: list[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        node = next(n for n in pending if all(i in ready or i not in made for i in n.input))
        pending.remove(node)
        ordered.append(node)
        ready.update(node.output)
    return ordered


def test_a_constant_scale_is_required(tmp_path: Path) -> None:
    nodes = [N("Mul", ["x", "two"], ["s"]), N("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             N("DequantizeLinear", ["xq", "s", "z"], ["y"])]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.float32(2.0), "two"), numpy_helper.from_array(np.int8(0), "z")]),
        opset_imports=[helper.make_opsetid("", 13)])  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match="computed at run time"):
        read_qdq(path)


def test_a_requantization_between_grids_becomes_its_own_op(tmp_path: Path) -> None:
    # x -> Q(0.02) -> DQ -> Q(0.05) -> DQ -> Relu -> Q/DQ: the second Q moves x onto a coarser grid.
    nodes = [N("QuantizeLinear", ["x", "s1", "z"], ["a"]), N("DequantizeLinear", ["a", "s1", "z"], ["ad"]),
             N("QuantizeLinear", ["ad", "s2", "z"], ["b"], name="requant"),
             N("DequantizeLinear", ["b", "s2", "z"], ["bd"]), N("Relu", ["bd"], ["r"]),
             N("QuantizeLinear", ["r", "s2", "z0"], ["c"]), N("DequantizeLinear", ["c", "s2", "z0"], ["y"])]
    inits = [init("s1", np.float32(0.02)), init("s2", np.float32(0.05)), init("z", np.int8(3)),
             init("z0", np.int8(-128))]
    path = tmp_path / "m.onnx"
    onnx.save(graph_model(nodes, {"x": [1, 16]}, ["y"], inits), str(path))
    graph = read_qdq(path)
    assert [n.op_type for n in graph.nodes] == ["QuantizeLinear", "Relu"]
    samples = {"x": np.random.default_rng(0).normal(0, 1.5, (32, 16)).astype(np.float32)}
    lowered, validation = lower_and_validate(path, samples)
    assert lowered.requantize_ops == 1
    assert validation.runtime("litert").max_quanta_diff <= 1 and validation.runtime("tflm").max_quanta_diff <= 1


def test_a_pair_per_reader_on_one_grid_is_one_tensor(tmp_path: Path) -> None:
    nodes = [N("QuantizeLinear", ["x", "s", "z"], ["a1"]), N("DequantizeLinear", ["a1", "s", "z"], ["d1"]),
             N("QuantizeLinear", ["x", "s", "z"], ["a2"]), N("DequantizeLinear", ["a2", "s", "z"], ["d2"]),
             N("Add", ["d1", "d2"], ["sum"]), N("QuantizeLinear", ["sum", "s2", "z"], ["q"]),
             N("DequantizeLinear", ["q", "s2", "z"], ["y"])]
    inits = [init("s", np.float32(0.02)), init("s2", np.float32(0.04)), init("z", np.int8(0))]
    path = tmp_path / "m.onnx"
    onnx.save(graph_model(nodes, {"x": [1, 8]}, ["y"], inits), str(path))
    graph = read_qdq(path)
    (add,) = graph.nodes
    assert add.inputs[0] == add.inputs[1] == graph.inputs[0].tensor
