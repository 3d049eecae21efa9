"""The onnxruntime engine on tiny ONNX models with known weights: results, batching, bad feeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_model
from tests.runtime.engines.engine_models import expected, onnx_linear_model
from wedge.runtime.engines import EngineError, open_engine
from wedge.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

X = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)


@pytest.fixture
def linear_path(tmp_path: Path) -> Path:
    path = tmp_path / "linear.onnx"
    path.write_bytes(onnx_linear_model("batch"))
    return path


def test_a_path_runs_and_returns_the_models_result(linear_path: Path) -> None:
    with open_engine(linear_path) as engine:
        assert engine.kind == "onnxruntime"
        out = engine.run({"x": X})
    assert list(out) == ["y"]
    np.testing.assert_allclose(out["y"], expected(X), rtol=1e-6)


def test_model_bytes_run_like_a_file() -> None:
    with OnnxRuntimeEngine(onnx_linear_model("batch"), threads=1) as engine:
        np.testing.assert_allclose(engine.run({"x": X})["y"], expected(X), rtol=1e-6)


def test_specs_show_names_symbolic_dims_and_dtypes(linear_path: Path) -> None:
    with open_engine(linear_path) as engine:
        (spec,) = engine.inputs
        assert (spec.name, spec.shape, spec.dtype) == ("x", ("batch", 4), np.dtype(np.float32))
        assert spec.quant is None
        assert [s.name for s in engine.outputs] == ["y"]


def test_a_batch_one_model_loops_over_a_larger_batch() -> None:
    with open_engine(onnx_linear_model(1), "onnxruntime") as engine:
        out = engine.run({"x": X})
    assert out["y"].shape == (3, 2)
    np.testing.assert_allclose(out["y"], expected(X), rtol=1e-6)


def test_a_fixed_batch_other_than_one_is_not_looped() -> None:
    with open_engine(onnx_linear_model(2), "onnxruntime") as engine:
        with pytest.raises(EngineError, match=r"expects \[2, 4\]"):
            engine.run({"x": X})


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"wrong": X}, "unknown input 'wrong'; the model's inputs are: x"),
        ({}, "missing input 'x'"),
        ({"x": X[:, :3]}, r"input 'x' has shape \[3, 3\], the model expects \[batch, 4\]"),
        ({"x": X.astype(np.float64)}, "input 'x' has dtype float64, the model expects float32"),
        ({"x": X[0]}, r"input 'x' has shape \[4\]"),
    ],
)
def test_bad_feeds_raise_a_one_line_engine_error(linear_path: Path, feeds: dict, message: str) -> None:
    with open_engine(linear_path) as engine, pytest.raises(EngineError, match=message) as info:
        engine.run(feeds)
    assert "\n" not in str(info.value)


def test_a_closed_engine_refuses_to_run(linear_path: Path) -> None:
    engine = open_engine(linear_path)
    engine.close()
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.run({"x": X})


def test_a_file_that_is_not_onnx_is_an_engine_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00not a protobuf at all\xff" * 4)
    with pytest.raises(EngineError, match="onnxruntime cannot load broken.onnx") as info:
        open_engine(path)
    assert "\n" not in str(info.value)


def test_zero_threads_is_refused(linear_path: Path) -> None:
    with pytest.raises(EngineError, match="threads must be at least 1"):
        open_engine(linear_path, threads=0)


def test_the_shared_vww_onnx_model_gives_two_probabilities_per_sample() -> None:
    path = shared_model("vww_96_float.onnx")
    x = np.random.default_rng(0).random((2, 3, 96, 96), dtype=np.float32)
    with open_engine(path) as engine:
        probabilities = engine.run({"input_1": x})["Identity"]
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
