"""Stage 1: loading and preprocessing refuses bad models with one clear line and fixes what it can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.quantize.conftest import build_tiny_cnn
from wedge.quantize.errors import ModelLoadError
from wedge.quantize.load import MIN_OPSET, default_opset, parse_input_shape, prepare_model


def test_prepare_upgrades_opset_11_to_13_so_per_channel_qdq_is_valid(tmp_path: Path) -> None:
    model = build_tiny_cnn(tmp_path / "old.onnx", opset=11)
    prepared = prepare_model(model, tmp_path)
    assert prepared.opset_in == 11
    assert default_opset(onnx.load(str(prepared.path))) >= MIN_OPSET
    assert any("opset upgraded from 11" in note for note in prepared.notes)


def test_prepare_keeps_a_symbolic_batch_dim_as_dynamic(tiny_model: Path, tmp_path: Path) -> None:
    prepared = prepare_model(tiny_model, tmp_path)
    (spec,) = prepared.inputs
    assert spec.batch_dynamic and spec.sample_shape == (1, 8, 8)


def test_missing_model_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        prepare_model(tmp_path / "nope.onnx", tmp_path)


def test_a_text_file_is_not_an_onnx_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("this is not a model\n" * 20)
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        prepare_model(bogus, tmp_path)


def test_a_truncated_model_is_reported_as_truncated(tiny_model: Path, tmp_path: Path) -> None:
    data = tiny_model.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        prepare_model(cut, tmp_path)


def test_a_custom_op_is_named_in_the_error(tmp_path: Path) -> None:
    node = helper.make_node("FancyGelu", ["x"], ["y"], name="act0", domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match=r"act0.*com\.example::FancyGelu"):
        prepare_model(path, tmp_path)


def test_dynamic_spatial_dims_need_input_shape(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])
    w = onnx.numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph([conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, "H", "W"])], [w])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(ModelLoadError, match="--input-shape"):
        prepare_model(path, tmp_path)
    prepared = prepare_model(path, tmp_path, {None: (1, 3, 16, 16)})
    assert prepared.inputs[0].shape == (1, 3, 16, 16)


def test_input_shape_that_contradicts_a_fixed_dim_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="contradicts"):
        prepare_model(tiny_model, tmp_path, {"x": (1, 3, 8, 8)})


@pytest.mark.parametrize("text,expected", [("1x3x96x96", (None, (1, 3, 96, 96))),
                                           ("input_1:1,3,96,96", ("input_1", (1, 3, 96, 96)))])
def test_parse_input_shape_accepts_both_forms(text: str, expected: tuple) -> None:
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize("text", ["1xAx3", "0x3", ""])
def test_parse_input_shape_rejects_garbage(text: str) -> None:
    with pytest.raises(ModelLoadError):
        parse_input_shape(text)


def test_a_float_tflite_gets_told_to_convert_it_to_onnx_first(tmp_path: Path) -> None:
    from tests.quantize.tflite.tflite_models import hybrid_model

    path = tmp_path / "detector.tflite"
    path.write_bytes(hybrid_model())
    with pytest.raises(ModelLoadError, match=r"detector.tflite is a TFLite model; .* \(pip install tflite2onnx"):
        prepare_model(path, tmp_path)


def test_batch_norm_is_folded_into_the_conv_before_it_with_the_same_outputs(tmp_path: Path) -> None:
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from wedge.quantize.fold import fold_batch_norms

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n) for n, s in
             (("w", (3, 2, 3, 3)), ("b", (3,)), ("g", (3,)), ("beta", (3,)), ("m", (3,)))]
    inits.append(numpy_helper.from_array(rng.uniform(0.5, 2, 3).astype(np.float32), "v"))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], name="conv"),
         helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["y"], epsilon=1e-3)], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.normal(size=(1, 2, 6, 6)).astype(np.float32)

    def run(m: onnx.ModelProto) -> np.ndarray:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
            None, {"x": x})[0]

    expected = run(model)
    assert fold_batch_norms(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    np.testing.assert_allclose(run(model), expected, rtol=1e-5, atol=1e-5)
