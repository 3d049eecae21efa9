"""`--keep-float auto` keeps the noisiest layer float until the --max-drop budget holds, and says which."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wedge.quantize.calibrate import Method
from wedge.quantize.errors import QuantizeError
from wedge.quantize.pipeline import QuantizeOptions, run_quantize


def _spiky_classifier(folder: Path) -> tuple[Path, Path]:
    """A dense classifier whose calibration input has rare huge spikes: int8 input grid too coarse for the rest."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (32, 16)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (16, 10)).astype(np.float32), "w2")]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="dense1"), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="dense2")], "spiky",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "spiky.onnx"))
    x = rng.normal(0, 1, (64, 32)).astype(np.float32)
    x[::16, 0] = 400.0  # the spikes set the input range
    np.savez(folder / "data.npz", x=x)
    return folder / "spiky.onnx", folder / "data.npz"


def test_auto_keeps_the_noisiest_layer_float_until_the_budget_holds(tmp_path: Path) -> None:
    model, data = _spiky_classifier(tmp_path)
    plain = run_quantize(model, tmp_path / "plain", calib=data,
                         options=QuantizeOptions(methods=(Method.MINMAX,), layer_samples=8, max_drop_pp=5.0))
    assert plain.budget.exceeded
    auto = run_quantize(model, tmp_path / "auto", calib=data,
                        options=QuantizeOptions(methods=(Method.MINMAX,), layer_samples=8, max_drop_pp=5.0,
                                                keep_float=("auto",)))
    assert not auto.budget.exceeded
    assert auto.auto_float and "dense1" in auto.float_nodes
    assert any(note.startswith("--keep-float auto: dense1") for note in auto.notes)
    assert any(f.kept_on_purpose and f.op_type == "MatMul" for f in auto.float_ops)


def test_auto_needs_a_budget(tmp_path: Path) -> None:
    model, data = _spiky_classifier(tmp_path)
    with pytest.raises(QuantizeError, match="give --max-drop"):
        run_quantize(model, tmp_path / "out", calib=data, options=QuantizeOptions(keep_float=("auto",)))
