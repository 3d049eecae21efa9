"""Small real ONNX models and data sets built in the test, so quantize tests need no shared files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def build_tiny_cnn(path: Path, *, opset: int = 13, batch: int | str = "N", seed: int = 0) -> Path:
    """Conv(1->4, 3x3) -> Relu -> Flatten -> Gemm(4*6*6 -> 3): a real classifier on 1x8x8 inputs."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "conv_w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "conv_b")
    fw = numpy_helper.from_array(rng.normal(0, 0.2, (3, 144)).astype(np.float32), "fc_w")
    fb = numpy_helper.from_array(np.zeros(3, np.float32), "fc_b")
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])],
        [w, b, fw, fb],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def tiny_data(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 8, 8), dtype=np.float32)


def labels_from_model(model: Path, x: np.ndarray) -> np.ndarray:
    """Labels the fp32 model gets right by construction: its own argmax (accuracy fp32 = 100%)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.argmax(session.run(None, {"x": x})[0], axis=1).astype(np.int64)


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return build_tiny_cnn(tmp_path / "tiny.onnx")


@pytest.fixture
def tiny_calib(tmp_path: Path) -> Path:
    path = tmp_path / "calib.npz"
    np.savez(path, x=tiny_data(40, seed=1))
    return path


@pytest.fixture
def tiny_eval(tmp_path: Path, tiny_model: Path) -> Path:
    path = tmp_path / "eval.npz"
    x = tiny_data(60, seed=2)
    np.savez(path, x=x, labels=labels_from_model(tiny_model, x))
    return path
