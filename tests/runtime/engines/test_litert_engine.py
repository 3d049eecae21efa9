"""The LiteRT engine: a tiny float model with known weights, the shared int8 VWW model, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_model
from tests.runtime.engines.engine_models import expected, tflite_linear_model
from wedge.runtime.engines import EngineError, QuantParams, open_engine

X = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]], dtype=np.float32)


@pytest.fixture
def linear_path(tmp_path: Path) -> Path:
    path = tmp_path / "linear.tflite"
    path.write_bytes(tflite_linear_model())
    return path


def test_a_tflite_path_opens_in_litert_and_computes_the_model(linear_path: Path) -> None:
    with open_engine(linear_path) as engine:
        assert engine.kind == "litert"
        np.testing.assert_allclose(engine.run({"x": X[:1]})["y"], expected(X[:1]), rtol=1e-6)


def test_a_batch_larger_than_the_models_one_is_run_sample_by_sample(linear_path: Path) -> None:
    with open_engine(linear_path, threads=1) as engine:
        out = engine.run({"x": X})["y"]
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, expected(X), rtol=1e-6)


def test_model_bytes_open_with_an_explicit_kind() -> None:
    with open_engine(tflite_linear_model(), "litert") as engine:
        assert [s.name for s in engine.inputs] == ["x"]
        assert engine.outputs[0].shape == (1, 2)


def test_wrong_input_name_and_shape_are_engine_errors(linear_path: Path) -> None:
    with open_engine(linear_path) as engine:
        with pytest.raises(EngineError, match="unknown input 'input'"):
            engine.run({"input": X})
        with pytest.raises(EngineError, match=r"has shape \[2, 5\], the model expects \[1, 4\]"):
            engine.run({"x": np.zeros((2, 5), np.float32)})


def test_a_file_that_is_not_a_flatbuffer_is_an_engine_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.tflite"
    path.write_bytes(b"definitely not a flatbuffer" * 3)
    with pytest.raises(EngineError, match="LiteRT cannot load junk.tflite"):
        open_engine(path)


def test_the_int8_vww_model_reports_its_quantization_and_runs() -> None:
    path = shared_model("vww_96_int8.tflite")
    with open_engine(path) as engine:
        (spec,) = engine.inputs
        assert spec.dtype == np.int8
        assert spec.quant == QuantParams(scales=(pytest.approx(1 / 255),), zero_points=(-128,), axis=0)
        image = np.random.default_rng(1).random((3, 96, 96, 3), dtype=np.float32)
        scores = engine.run({spec.name: spec.quant.quantize(image, np.int8)})
    (out,) = scores.values()
    assert out.shape == (3, 2) and out.dtype == np.int8


def test_loading_a_model_says_nothing_on_the_terminal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from wedge.samples.tiny_tflite import int8_fc_model

    model = tmp_path / "fc.tflite"
    model.write_bytes(int8_fc_model())
    code = f"from wedge.runtime.engines import open_engine; open_engine({str(model)!r}).close()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr and result.stderr.strip() == ""
