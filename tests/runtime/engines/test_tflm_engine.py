"""The TFLite-Micro engine: the real TFLM kernels, its arena, and agreement with LiteRT."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.conftest import shared_model
from tests.runtime.engines.engine_models import expected, tflite_linear_model
from wedge.runtime.engines import EngineError, open_engine
from wedge.runtime.engines.tflm_engine import MIN_ARENA_BYTES

X = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]], dtype=np.float32)
VWW_ARENA_BYTES = 120_000  # the shared README: vww_96_int8 needs about 104 KB


def test_the_tiny_model_runs_in_tflm_with_names_from_the_flatbuffer() -> None:
    with open_engine(tflite_linear_model(), "tflm", arena_bytes=8192) as engine:
        assert engine.kind == "tflm"
        assert [s.name for s in engine.inputs] == ["x"] and [s.name for s in engine.outputs] == ["y"]
        out = engine.run({"x": X})["y"]
    np.testing.assert_allclose(out, expected(X), rtol=1e-6)


def test_tflm_needs_an_arena_size(tmp_path: Path) -> None:
    path = tmp_path / "linear.tflite"
    path.write_bytes(tflite_linear_model())
    with pytest.raises(EngineError, match="needs an arena size"):
        open_engine(path, "tflm")


def test_an_arena_below_the_floor_is_refused_before_tflm_can_crash() -> None:
    with pytest.raises(EngineError, match=f"arena of 100 bytes is too small.*{MIN_ARENA_BYTES}"):
        open_engine(tflite_linear_model(), "tflm", arena_bytes=100)


def test_a_too_small_arena_is_an_engine_error_naming_its_size() -> None:
    path = shared_model("vww_96_int8.tflite")
    with pytest.raises(EngineError, match="the TFLM arena of 50000 bytes is too small for vww_96_int8.tflite") as info:
        open_engine(path, "tflm", arena_bytes=50_000)
    assert "\n" not in str(info.value)


def test_an_op_without_a_tflm_kernel_is_named_not_blamed_on_the_arena() -> None:
    model = schema.ModelT.InitFromPackedBuf(tflite_linear_model(), 0)
    opcode = model.operatorCodes[0]
    opcode.builtinCode = opcode.deprecatedBuiltinCode = schema.BuiltinOperator.LOCAL_RESPONSE_NORMALIZATION
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(EngineError, match="no kernel for LOCAL_RESPONSE_NORMALIZATION"):
        open_engine(bytes(builder.Output()), "tflm", arena_bytes=8192)


def test_a_truncated_model_is_an_engine_error_not_a_crash() -> None:
    data = tflite_linear_model()
    with pytest.raises(EngineError, match="truncated or corrupt"):
        open_engine(data[: len(data) // 2], "tflm", arena_bytes=8192)


def test_tflm_and_litert_agree_within_one_quantum_on_int8_vww() -> None:
    path = shared_model("vww_96_int8.tflite")
    rng = np.random.default_rng(7)
    with open_engine(path, "litert") as litert, open_engine(path, "tflm", arena_bytes=VWW_ARENA_BYTES) as tflm:
        spec = litert.inputs[0]
        assert tflm.inputs == litert.inputs and tflm.outputs == litert.outputs
        # A smooth image, not noise, so the scores are not all saturated at the same value.
        ramp = np.linspace(0.0, 1.0, 96, dtype=np.float32)
        images = np.stack([np.outer(ramp, ramp[::-1]), rng.random((96, 96), dtype=np.float32)])
        feeds = {spec.name: spec.quant.quantize(np.repeat(images[..., None], 3, axis=-1), np.int8)}
        reference = litert.run(feeds)
        micro = tflm.run(feeds)
    (name,) = reference
    assert micro[name].shape == (2, 2)
    difference = np.abs(reference[name].astype(np.int32) - micro[name].astype(np.int32))
    assert difference.max() <= 1
