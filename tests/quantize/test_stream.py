"""Stateful models: a scalar input pinned to a constant, a state whose batch axis is 1, and streaming evaluation
that feeds each output state back (the error a device accumulates), for fp32 and int8 alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from wedge.quantize.calibrate import Method
from wedge.quantize.calibration import ArraySampleSet
from wedge.quantize.errors import QuantizeError
from wedge.quantize.evaluate import compare_models
from wedge.quantize.load import prepare_model
from wedge.quantize.pipeline import QuantizeOptions, run_quantize
from wedge.runtime.engines import open_engine

STATE = 8


def _vad_like(path: Path, recurrent_gain: float = 0.9) -> Path:
    """A voice-activity-detector-shaped cell: x [N, 16], state [2, N, 8], sr (scalar int64) -> prob [N, 1],
    stateN [2, N, 8], as silero-style exporters lay them out."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, (16, STATE)).astype(np.float32), "wx"),
             numpy_helper.from_array((recurrent_gain * np.eye(STATE)).astype(np.float32), "wh"),
             numpy_helper.from_array(rng.normal(0, 0.8, (STATE, 1)).astype(np.float32), "wo"),
             numpy_helper.from_array(np.array(16000.0, np.float32), "rate"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    n = helper.make_node
    nodes = [n("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT), n("Div", ["srf", "rate"], ["scale"]),
             n("Mul", ["x", "scale"], ["xs"]), n("Gather", ["state", "zero"], ["h0"], axis=0),
             n("MatMul", ["xs", "wx"], ["a"]), n("MatMul", ["h0", "wh"], ["b"]), n("Add", ["a", "b"], ["c"]),
             n("Tanh", ["c"], ["h"]), n("MatMul", ["h", "wo"], ["logit"]), n("Sigmoid", ["logit"], ["prob"]),
             n("Mul", ["h0", "half"], ["h1"]), n("Unsqueeze", ["h", "axis0"], ["u0"]),
             n("Unsqueeze", ["h1", "axis0"], ["u1"]), n("Concat", ["u0", "u1"], ["stateN"], axis=0)]
    graph = helper.make_graph(
        nodes, "vad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "N", STATE]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "N", STATE])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _stream(count: int, seed: int) -> dict[str, np.ndarray]:
    """A stream of `count` steps: speech-like bursts; states zero (the stream feeds its own)."""
    rng = np.random.default_rng(seed)
    loud = (np.arange(count) // 10) % 2 == 1
    x = rng.normal(0, 1, (count, 16)).astype(np.float32) * np.where(loud, 1.5, 0.3)[:, None].astype(np.float32)
    return {"x": x, "state": np.zeros((count, 2, STATE), np.float32)}


def test_a_stateful_model_is_quantized_with_a_pinned_rate_and_streamed_states(tmp_path: Path) -> None:
    model = _vad_like(tmp_path / "vad.onnx")
    np.savez(tmp_path / "calib.npz", **_stream(60, 1))
    np.savez(tmp_path / "eval.npz", **_stream(60, 2))
    options = QuantizeOptions(methods=(Method.MINMAX,), pinned_inputs={"sr": 16000.0},
                              batch_axes={"state": 1, "stateN": 1}, stream_states=(("state", "stateN"),),
                              layer_samples=4, format="tflite")
    report = run_quantize(model, tmp_path / "out", calib=tmp_path / "calib.npz", evaluation=tmp_path / "eval.npz",
                          options=options)
    assert [i["name"] for i in report.inputs] == ["x", "state"]  # sr became a constant
    assert report.inputs[1]["shape"] == [1, 2, STATE]  # fed batch first
    assert report.evaluation.streamed
    prob = report.evaluation.primary
    assert prob.metric == "decision agreement" and prob.metric_pct is not None and prob.metric_pct >= 80.0
    assert any("pinned to 16000" in note for note in report.notes)
    assert report.tflite is not None and report.tflite.validation.passed


def test_streaming_shows_the_error_that_feeding_the_data_states_hides(tmp_path: Path) -> None:
    exact = prepare_model(_vad_like(tmp_path / "a.onnx"), tmp_path, pinned_inputs={"sr": 16000.0},
                          batch_axes={"state": 1, "stateN": 1})
    (tmp_path / "b").mkdir()
    drifted = prepare_model(_vad_like(tmp_path / "b" / "a.onnx", recurrent_gain=0.97), tmp_path / "b",
                            pinned_inputs={"sr": 16000.0}, batch_axes={"state": 1, "stateN": 1})
    samples = ArraySampleSet(_stream(80, 3), None, "stream")
    with open_engine(exact.path) as a, open_engine(drifted.path) as b:
        forced = compare_models(a, b, samples, batch_size=16)
        streamed = compare_models(a, b, samples, batch_size=16, stream=(("state", "stateN"),))
    # Fed zero states, the two cells barely differ; fed back, the recurrent difference compounds.
    assert streamed.primary.sqnr_db < forced.primary.sqnr_db - 6.0
    assert streamed.streamed and not forced.streamed


def test_a_stream_state_naming_an_unknown_output_is_one_clear_error(tmp_path: Path) -> None:
    model = _vad_like(tmp_path / "vad.onnx")
    np.savez(tmp_path / "calib.npz", **_stream(8, 1))
    options = QuantizeOptions(methods=(Method.MINMAX,), pinned_inputs={"sr": 16000.0},
                              batch_axes={"state": 1, "stateN": 1}, stream_states=(("state", "hidden"),))
    with pytest.raises(QuantizeError, match=r"--stream-state state=hidden: 'hidden' is not an output"):
        run_quantize(model, tmp_path / "out", calib=tmp_path / "calib.npz", options=options)
