"""The flatbuffer writer: files both interpreters load, aligned buffers, op codes old and new readers see."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from wedge.quantize.tflite.writer import BUFFER_ALIGNMENT, TfliteWriter
from wedge.runtime.artifacts.tflite_flatbuffer import builtin_code, read_tflite
from wedge.runtime.engines import open_engine
from wedge.runtime.types import QuantParams


def _fully_connected(writer: TfliteWriter) -> None:
    x = writer.add_tensor("x", [1, 4], np.int8, QuantParams((0.1,), (3,)))
    w = writer.add_tensor("w", [3, 4], np.int8, QuantParams((0.01, 0.02, 0.03), (0, 0, 0), 0),
                          np.array([[1, -2, 3, 4], [5, 6, -7, 8], [9, 10, 11, -12]], np.int8))
    b = writer.add_tensor("b", [3], np.int32, QuantParams((0.001, 0.002, 0.003), (0, 0, 0), 0),
                          np.array([10, 20, 30], np.int32))
    y = writer.add_tensor("y", [1, 3], np.int8, QuantParams((0.05,), (-5,)))
    writer.add_op("FULLY_CONNECTED", [x, w, b], [y], schema.FullyConnectedOptionsT())
    writer.inputs, writer.outputs = [x], [y]


def test_written_model_runs_the_same_in_litert_and_tflm() -> None:
    writer = TfliteWriter()
    _fully_connected(writer)
    data = writer.to_bytes("test")
    x = np.array([[10, -20, 30, 127]], np.int8)
    # By hand: ((x - 3) * 0.1) @ (W * scales).T + bias, on the output grid (0.05, -5).
    real = (x.astype(float) - 3) * 0.1 @ (np.array([[1, -2, 3, 4], [5, 6, -7, 8], [9, 10, 11, -12]]) *
                                           np.array([[0.01], [0.02], [0.03]])).T + [0.01, 0.04, 0.09]
    expected = np.clip(np.rint(real / 0.05) - 5, -128, 127).astype(np.int8)
    for kind in ("litert", "tflm"):
        with open_engine(data, kind, arena_bytes=16384) as engine:
            assert np.array_equal(engine.run({"x": x})["y"], expected)


def test_constant_buffers_start_on_16_byte_boundaries() -> None:
    writer = TfliteWriter()
    _fully_connected(writer)
    writer.add_tensor("odd", [3], np.int8, None, np.array([1, 2, 3], np.int8))
    data = writer.to_bytes("test")
    for name, values in ((b"w", np.int8), (b"b", np.int32)):
        tensor = next(t for t in read_tflite(data, "t").subgraphs[0].tensors if t.name == name)
        payload = np.ascontiguousarray(read_tflite(data, "t").buffers[tensor.buffer].data).tobytes()
        offset = data.find(payload)
        assert offset % BUFFER_ALIGNMENT == 0, (name, offset)


def test_op_codes_fill_both_fields_so_old_and_new_readers_agree() -> None:
    writer = TfliteWriter()
    x = writer.add_tensor("x", [4], np.float32)
    axis = writer.add_tensor("axis", [], np.int32, None, np.array(0, np.int32))
    y = writer.add_tensor("y", [4], np.float32)
    writer.add_op("CUMSUM", [x, axis], [y], schema.CumsumOptionsT())
    writer.add_op("RELU", [y], [writer.add_tensor("z", [4], np.float32)])
    model = read_tflite(writer.to_bytes("t"), "t")
    cumsum, relu = model.operatorCodes
    assert (cumsum.builtinCode, cumsum.deprecatedBuiltinCode) == (schema.BuiltinOperator.CUMSUM, 127)
    assert relu.builtinCode == relu.deprecatedBuiltinCode == schema.BuiltinOperator.RELU
    assert builtin_code(cumsum) == schema.BuiltinOperator.CUMSUM


def test_renaming_keeps_the_wanted_name_and_moves_the_holder_aside() -> None:
    writer = TfliteWriter()
    first = writer.add_tensor("logits", [2], np.float32)
    second = writer.add_tensor("internal", [2], np.float32)
    writer.rename(second, "logits")
    assert writer.tensor(second).name == "logits"
    assert writer.tensor(first).name != "logits"
