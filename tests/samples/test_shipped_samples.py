"""The committed sample files: they load in onnxruntime, have the documented interface and accuracy."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from wedge.samples import SAMPLES, Sample

ALL = pytest.mark.parametrize("sample", list(SAMPLES.values()), ids=list(SAMPLES))
# The size goal "int8 <= 0.3x fp32" is only judged on models above this many parameters.
SIZE_GOAL_MIN_PARAMS = 10_000
MAX_SHIPPED_BYTES = 500 * 1024


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _metadata(sample: Sample) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(sample.model_path).metadata_props}


@ALL
def test_shipped_model_reaches_its_documented_accuracy_in_onnxruntime(sample: Sample) -> None:
    session = ort.InferenceSession(str(sample.model_path), providers=["CPUExecutionProvider"])
    with np.load(sample.eval_path) as data:
        x, labels = data[sample.input_name], data["labels"]
    logits = session.run([sample.output_name], {sample.input_name: x})[0]
    assert logits.shape == (len(x), len(sample.labels))
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    assert accuracy >= sample.min_accuracy


@ALL
def test_shipped_model_has_a_symbolic_batch_and_one_logits_output(sample: Sample) -> None:
    model = onnx.load(sample.model_path)
    onnx.checker.check_model(model, full_check=True)
    assert [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")] == [13]
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert graph_input.name == sample.input_name
    assert _dims(graph_input) == ["N", *sample.input_shape]
    assert graph_output.name == sample.output_name == "logits"
    assert _dims(graph_output) == ["N", len(sample.labels)]


@ALL
def test_shipped_model_runs_a_single_window_as_well_as_a_batch(sample: Sample) -> None:
    session = ort.InferenceSession(str(sample.model_path), providers=["CPUExecutionProvider"])
    with np.load(sample.calib_path) as data:
        one = data[sample.input_name][:1]
    assert session.run(None, {sample.input_name: one})[0].shape == (1, len(sample.labels))


@ALL
def test_shipped_model_metadata_lists_the_class_labels(sample: Sample) -> None:
    metadata = _metadata(sample)
    assert tuple(json.loads(metadata["labels"])) == sample.labels
    assert metadata["task"] == "classification"


def test_ppg_model_metadata_describes_the_ring_sensor_window() -> None:
    metadata = _metadata(SAMPLES["ppg_quality"])
    assert metadata["sensor"] == "ppg"
    assert metadata["rate_hz"] == "50"
    assert metadata["window_s"] == "4"
    assert SAMPLES["ppg_quality"].input_shape == (1, 50 * 4)


@ALL
def test_calibration_and_eval_files_hold_float32_inputs_the_model_accepts(sample: Sample) -> None:
    with np.load(sample.calib_path) as calib, np.load(sample.eval_path) as evaluation:
        calib_x = calib[sample.input_name]
        eval_x, labels = evaluation[sample.input_name], evaluation["labels"]
    assert calib_x.dtype == eval_x.dtype == np.float32
    assert calib_x.shape[1:] == eval_x.shape[1:] == sample.input_shape
    assert 100 <= len(calib_x) <= 200
    assert len(eval_x) == len(labels) <= 500
    assert labels.dtype == np.int64
    # Every class is represented, so per-class accuracy is measurable.
    assert set(labels.tolist()) == set(range(len(sample.labels)))


def test_digits_inputs_are_pixels_scaled_to_the_unit_range() -> None:
    with np.load(SAMPLES["digits"].eval_path) as data:
        x = data["input"]
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.allclose(x * 16, np.round(x * 16))


def test_ppg_windows_are_z_scored() -> None:
    with np.load(SAMPLES["ppg_quality"].eval_path) as data:
        x = data["ppg"][:, 0, :].astype(np.float64)
    assert np.allclose(x.mean(axis=1), 0.0, atol=1e-2)
    assert np.allclose(x.std(axis=1), 1.0, atol=1e-2)


def test_digits_model_is_big_enough_for_the_int8_size_goal() -> None:
    model = onnx.load(SAMPLES["digits"].model_path)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert params > SIZE_GOAL_MIN_PARAMS


def test_shipped_files_stay_small() -> None:
    total = sum(p.stat().st_size for s in SAMPLES.values() for p in (s.model_path, s.calib_path, s.eval_path))
    assert total <= MAX_SHIPPED_BYTES
