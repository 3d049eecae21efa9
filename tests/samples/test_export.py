"""ONNX export of numpy networks: onnxruntime computes what the numpy forward computes, bytes are stable."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from wedge.samples.export import IR_VERSION, OPSET, to_onnx
from wedge.samples.train import Conv, Dense, Flatten, GlobalAvgPool, Layer, MaxPool, Params, ReLU, init_params, predict


def _export(network: list[Layer], params: list[Params], input_shape: tuple[int, ...], outputs: int) -> onnx.ModelProto:
    return to_onnx(
        network,
        params,
        graph_name="t",
        input_name="x",
        input_shape=input_shape,
        output_name="logits",
        output_size=outputs,
        doc="test network",
        metadata={"labels": '["a", "b", "c"]', "sensor": "ppg"},
    )


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"x": x})[0]


def _float32_params(network: list[Layer], seed: int) -> list[Params]:
    rng = np.random.default_rng(seed)
    params = init_params(network, rng, dtype=np.float32)
    for p in params:
        for value in p.values():
            value += rng.normal(0, 0.1, value.shape).astype(np.float32)
    return params


def _assert_same_as_numpy(network: list[Layer], params: list[Params], x: np.ndarray, outputs: int) -> None:
    model = _export(network, params, x.shape[1:], outputs)
    params64 = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
    expected = predict(network, params64, x.astype(np.float64))
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_exported_2d_cnn_matches_the_numpy_forward_on_a_batch() -> None:
    network = [Conv(1, 4, (3, 3), padding=1), ReLU(), Conv(4, 6, (3, 3), padding=1), ReLU(), MaxPool((2, 2)),
               Flatten(), Dense(6 * 4 * 4, 5), ReLU(), Dense(5, 3)]
    x = np.random.default_rng(1).random((7, 1, 8, 8), dtype=np.float32)
    _assert_same_as_numpy(network, _float32_params(network, 0), x, 3)


def test_exported_1d_cnn_matches_the_numpy_forward_including_floor_pooling() -> None:
    network = [Conv(1, 4, (7,), padding=3), ReLU(), MaxPool((4,)), Conv(4, 4, (5,), padding=2), ReLU(),
               GlobalAvgPool(), Flatten(), Dense(4, 3)]
    x = np.random.default_rng(2).normal(size=(5, 1, 30)).astype(np.float32)
    _assert_same_as_numpy(network, _float32_params(network, 1), x, 3)


def test_export_declares_opset_ir_version_batch_dim_and_metadata() -> None:
    network = [Flatten(), Dense(4, 3)]
    model = _export(network, _float32_params(network, 2), (1, 4), 3)
    assert model.ir_version == IR_VERSION
    assert [o.version for o in model.opset_import] == [OPSET]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert {p.key: p.value for p in model.metadata_props} == {"labels": '["a", "b", "c"]', "sensor": "ppg"}
    assert model.doc_string == "test network"


def test_exporting_the_same_weights_twice_gives_identical_bytes() -> None:
    network = [Conv(1, 2, (3,), padding=1), ReLU(), GlobalAvgPool(), Flatten(), Dense(2, 3)]
    params = _float32_params(network, 3)
    first = _export(network, params, (1, 10), 3).SerializeToString()
    assert _export(network, params, (1, 10), 3).SerializeToString() == first


def test_export_refuses_a_layer_it_cannot_lower() -> None:
    class Mystery(ReLU):
        """A layer the exporter has never heard of."""

    with pytest.raises(TypeError, match="no ONNX lowering"):
        _export([Mystery()], [{}], (3,), 3)
