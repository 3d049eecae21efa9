"""Bad model files give one-line ArtifactErrors naming the problem, never a parser's traceback."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.runtime.artifacts.artifact_models import onnx_conv_model, tflite_shapes_model
from wedge.runtime.artifacts import ArtifactError, inspect_model


def _inspect_error(path: Path) -> str:
    with pytest.raises(ArtifactError) as info:
        inspect_model(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_missing_file(tmp_path: Path) -> None:
    assert _inspect_error(tmp_path / "nope.onnx") == f"model file not found: {tmp_path / 'nope.onnx'}"


def test_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    assert "not a file" in _inspect_error(folder)


def test_an_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02")
    assert _inspect_error(path) == "unknown model format '.pt' for model.pt: expected .onnx or .tflite"


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tflite"
    path.touch()
    assert _inspect_error(path) == "empty.tflite is empty"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("text.onnx", b"this is a text file, not a model\n", "text.onnx is not an ONNX model"),
        ("swapped.onnx", tflite_shapes_model(), "swapped.onnx is not an ONNX model"),
        ("text.tflite", b"this is a text file, not a model\n", "text.tflite is not a TFLite model"),
        ("swapped.tflite", onnx_conv_model(), "swapped.tflite is not a TFLite model"),
    ],
)
def test_a_file_of_another_kind(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert _inspect_error(path).startswith(message)


@pytest.mark.parametrize(("name", "data"), [("cut.onnx", onnx_conv_model()), ("cut.tflite", tflite_shapes_model())])
def test_a_truncated_file(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _inspect_error(path)


def test_an_operator_pointing_past_the_op_code_table(tmp_path: Path) -> None:
    model = schema.ModelT.InitFromPackedBuf(tflite_shapes_model(), 0)
    model.subgraphs[0].operators[0].opcodeIndex = 99
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "dangling.tflite"
    path.write_bytes(bytes(builder.Output()))
    opcodes = len(model.operatorCodes)
    assert _inspect_error(path) == (
        f"dangling.tflite is not a valid TFLite model (subgraph 0: an operator uses op code 99 of {opcodes})"
    )


def test_an_initializer_declaring_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20], raw_data=bytes(16))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "huge",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2**20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2**20])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "huge.onnx"
    onnx.save(model, path)
    with pytest.raises(ArtifactError, match=r"'w' declares 1,099,511,627,776 elements .* holds 16 bytes"):
        inspect_model(path)
