"""Small float ONNX graphs built here, quantized by the real pipeline stages, and helpers to export and check them.

Imported by name from the TFLite export tests (a unique module name, unlike conftest).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wedge.quantize.calibrate import Method, calibrate
from wedge.quantize.calibration import ArraySampleSet, feed_batch_size
from wedge.quantize.load import prepare_model
from wedge.quantize.plan import TFLITE_OP_TYPES, QuantPlan
from wedge.quantize.static import write_qdq_model
from wedge.quantize.tflite.convert import LoweredModel, lower_graph
from wedge.quantize.tflite.graph import read_qdq
from wedge.quantize.tflite.validate import Validation, validate_tflite

# In-process TFLM needs an arena; a generous one never crashes (only tiny ones do).
ARENA_BYTES: Final = 2 * 1024 * 1024



def weights(shape: Sequence[int], seed: int, scale: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, tuple(shape)).astype(np.float32)


def init(name: str, values: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values), name)


def graph_model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int | str]], outputs: Sequence[str],
                initializers: Sequence[TensorProto] = (), opset: int = 13) -> onnx.ModelProto:
    """A model whose outputs' shapes are left to shape inference."""
    graph = helper.make_graph(
        nodes, "case",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        list(initializers),
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for output in model.graph.output:
        output.CopyFrom(known[output.name])
    return model


def quantize(model: onnx.ModelProto, folder: Path, *, count: int = 48) -> tuple[Path, dict[str, np.ndarray]]:
    """Quantize `model` to int8 QDQ with onnxruntime (minmax) as `wedge quantize --format tflite` does; returns the QDQ path
    and fresh eval inputs keyed by input name."""
    source = folder / "case.onnx"
    onnx.save(model, str(source))
    prepared = prepare_model(source, folder)
    rng = np.random.default_rng(7)
    calib = {s.name: rng.normal(0, 1, (count, *s.sample_shape)).astype(np.float32) for s in prepared.inputs}
    ranges = calibrate(prepared.path, ArraySampleSet(calib, None, "calib"), Method.MINMAX,
                       batch_size=feed_batch_size(prepared.inputs, 16), op_types=TFLITE_OP_TYPES)
    qdq = folder / "case.int8.onnx"
    write_qdq_model(prepared.path, ranges, qdq, QuantPlan(TFLITE_OP_TYPES, force_quantize_inputs=True))
    evaluation = {s.name: rng.normal(0, 1, (count, *s.sample_shape)).astype(np.float32) for s in prepared.inputs}
    return qdq, evaluation


def lower_and_validate(qdq: Path, samples: dict[str, np.ndarray], io: str = "int8") -> tuple[LoweredModel, Validation]:
    lowered = lower_graph(read_qdq(qdq), io)  # type: ignore[arg-type]
    return lowered, validate_tflite(qdq, lowered.data, lowered, samples, arena_bytes=ARENA_BYTES)


def quantize_file(source: Path, calib: np.ndarray, folder: Path) -> Path:
    """The int8 QDQ ONNX of a model file, calibrated (minmax) on `calib`, as `wedge quantize` writes it."""
    prepared = prepare_model(source, folder)
    samples = ArraySampleSet({prepared.inputs[0].name: calib}, None, "calib")
    ranges = calibrate(prepared.path, samples, Method.MINMAX, batch_size=feed_batch_size(prepared.inputs, 16),
                       op_types=TFLITE_OP_TYPES)
    qdq = folder / f"{source.stem}.int8.onnx"
    write_qdq_model(prepared.path, ranges, qdq, QuantPlan(TFLITE_OP_TYPES, force_quantize_inputs=True))
    return qdq


def quantize_sample(name: str, folder: Path, *, eval_count: int = 60) -> tuple[Path, dict[str, np.ndarray]]:
    """A bundled sample's int8 QDQ ONNX and the first eval inputs, keyed by input name."""
    from wedge.samples import SAMPLES

    sample = SAMPLES[name]
    with np.load(sample.calib_path) as data:
        calib = data[sample.input_name]
    with np.load(sample.eval_path) as data:
        evaluation = data[sample.input_name][:eval_count]
    return quantize_file(sample.model_path, calib, folder), {sample.input_name: evaluation}


def tflite_ops(data: bytes) -> list[tuple[str, list[Any], list[Any]]]:
    """(op name, input TensorTs, output TensorTs) of a .tflite's main subgraph, in order (None: omitted)."""
    from wedge.runtime.artifacts.tflite_flatbuffer import int_list, op_name, read_tflite

    model = read_tflite(data, "test")
    subgraph = model.subgraphs[0]
    return [(op_name(model, int(op.opcodeIndex)),
             [subgraph.tensors[i] if i >= 0 else None for i in int_list(op.inputs)],
             [subgraph.tensors[i] for i in int_list(op.outputs)]) for op in subgraph.operators]


def grid(tensor: Any) -> tuple[list[float], list[int], int]:
    """A TensorT's scales, zero points and quantized dimension."""
    q = tensor.quantization
    return [float(s) for s in q.scale], [int(z) for z in q.zeroPoint], int(q.quantizedDimension)


def hybrid_model() -> bytes:
    """Float activations through int8 weights: dynamic-range quantization, which TFLite-Micro lacks."""
    from ai_edge_litert import schema_py_generated as schema

    from wedge.quantize.tflite.writer import TfliteWriter
    from wedge.runtime.types import QuantParams

    writer = TfliteWriter()
    x = writer.add_tensor("x", [1, 4], np.float32)
    w = writer.add_tensor("w", [2, 4], np.int8, QuantParams((0.01, 0.01), (0, 0), 0), np.ones((2, 4), np.int8))
    y = writer.add_tensor("y", [1, 2], np.float32)
    writer.add_op("FULLY_CONNECTED", [x, w, -1], [y], schema.FullyConnectedOptionsT())
    writer.inputs, writer.outputs = [x], [y]
    return writer.to_bytes("hybrid")
