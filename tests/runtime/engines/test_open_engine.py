"""open_engine: picking the runtime by extension or kind, and one-line errors for what it cannot open."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.engines.engine_models import onnx_linear_model, tflite_linear_model
from wedge.runtime.engines import EngineError, open_engine


def test_auto_opens_onnx_in_onnxruntime_and_tflite_in_litert(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(onnx_linear_model("n"))
    (tmp_path / "m.tflite").write_bytes(tflite_linear_model())
    with open_engine(tmp_path / "m.onnx") as onnx_engine, open_engine(str(tmp_path / "m.tflite")) as tflite_engine:
        assert (onnx_engine.kind, tflite_engine.kind) == ("onnxruntime", "litert")


def test_a_missing_file_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="model file not found: .*absent.tflite"):
        open_engine(tmp_path / "absent.tflite", "tflm", arena_bytes=4096)


def test_an_unknown_extension_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no engine for '\.pb' \(model\.pb\): expected \.onnx or \.tflite"):
        open_engine(tmp_path / "model.pb")


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(EngineError, match="unknown engine kind 'tvm'.*onnxruntime, litert, tflm"):
        open_engine(tflite_linear_model(), "tvm")


def test_bytes_need_an_explicit_kind() -> None:
    with pytest.raises(EngineError, match="pass kind="):
        open_engine(tflite_linear_model())
