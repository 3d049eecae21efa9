"""Validation of an export against onnxruntime on the QDQ model: the numbers, and drift caught."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from onnx import helper

from tests.quantize.tflite.tflite_models import ARENA_BYTES, graph_model, init, lower_and_validate, quantize, weights
from wedge.quantize.tflite.convert import lower_graph
from wedge.quantize.tflite.graph import read_qdq
from wedge.quantize.tflite.validate import DEFAULT_SAMPLES, synthetic_samples, validate_tflite
from wedge.quantize.tflite.writer import TFLITE_IDENTIFIER
from wedge.runtime.artifacts.tflite_flatbuffer import op_name, read_tflite


def test_digits_agrees_with_onnxruntime_in_both_runtimes(digits_qdq: tuple[Path, dict]) -> None:
    qdq, samples = digits_qdq
    _, validation = lower_and_validate(qdq, samples)
    assert validation.passed and validation.samples == 60
    litert, tflm = validation.runtime("litert"), validation.runtime("tflm")
    assert litert.identical_pct >= 99.0 and litert.max_quanta_diff <= 1 and litert.top1_agreement_pct == 100.0
    assert tflm.within_one_quantum_pct == 100.0 and tflm.top1_agreement_pct == 100.0
    assert tflm.invoke_ms > 0
    data = validation.to_dict()
    assert set(data["runtimes"]) == {"litert", "tflm"} and data["passed"] is True


def test_ppg_1d_cnn_agrees_with_onnxruntime(ppg_qdq: tuple[Path, dict]) -> None:
    qdq, samples = ppg_qdq
    lowered, validation = lower_and_validate(qdq, samples)
    assert lowered.inputs[0].tflite_shape == (1, 1, 200, 1)
    assert validation.runtime("litert").max_quanta_diff <= 1
    assert validation.runtime("tflm").within_one_quantum_pct == 100.0
    assert validation.runtime("tflm").top1_agreement_pct == 100.0


def test_a_scrambled_weight_is_caught_as_drift(digits_qdq: tuple[Path, dict]) -> None:
    qdq, samples = digits_qdq
    lowered = lower_graph(read_qdq(qdq))
    model = read_tflite(lowered.data, "digits")
    subgraph = model.subgraphs[0]
    dense = next(op for op in subgraph.operators if op_name(model, int(op.opcodeIndex)) == "FULLY_CONNECTED")
    weights = model.buffers[subgraph.tensors[int(dense.inputs[1])].buffer]
    # NCHW column order instead of NHWC: the mistake a missing Flatten permutation would make.
    matrix = np.asarray(weights.data, np.uint8).reshape(64, 4, 4, 32)  # [units, h, w, c] of the NHWC input
    weights.data = np.ascontiguousarray(matrix.transpose(0, 3, 1, 2)).reshape(-1)
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    validation = validate_tflite(qdq, bytes(builder.Output()), lowered, samples, arena_bytes=ARENA_BYTES)
    assert not validation.passed
    assert any("differ from onnxruntime's by SQNR" in p or "top-1" in p for p in validation.problems)


def test_without_eval_data_inputs_span_the_int8_input_range(digits_qdq: tuple[Path, dict]) -> None:
    lowered = lower_graph(read_qdq(digits_qdq[0]))
    samples = synthetic_samples(lowered)["input"]
    binding = lowered.inputs[0]
    codes = binding.params.quantize(samples, np.int8)
    assert samples.shape == (DEFAULT_SAMPLES, 1, 8, 8)
    assert codes.min() == -128 and codes.max() == 127


def test_an_autoencoder_output_is_not_scored_by_top1(tmp_path: Path) -> None:
    model = graph_model([helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
                         helper.make_node("Gemm", ["h", "w2"], ["y"], transB=1)], {"x": [1, 16]}, ["y"],
                        [init("w", weights([4, 16], 1)), init("w2", weights([16, 4], 2))])
    qdq, samples = quantize(model, tmp_path)
    _, validation = lower_and_validate(qdq, samples)
    assert all(r.top1_agreement_pct is None for r in validation.runtimes)
    assert validation.passed
