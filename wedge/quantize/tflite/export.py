"""`export_tflite`: int8 QDQ ONNX -> int8 .tflite, validated in LiteRT and TFLite-Micro, with its arena measured.

The file appears only when every step passed: it is written beside the target and renamed into place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from wedge.quantize.tflite.arena import ArenaMeasurement, measure_arena
from wedge.quantize.tflite.convert import IoBinding, IoKind, LoweredModel, lower_graph
from wedge.quantize.tflite.errors import ExportDriftError, ExportError
from wedge.quantize.tflite.graph import read_qdq
from wedge.quantize.tflite.validate import DEFAULT_SAMPLES, Validation, describe, synthetic_samples, validate_tflite
from wedge.runtime.artifacts.labels import ModelLabels, read_model_labels, tflite_metadata

# Validation runs TFLM in this process: a few bytes short of the measured arena can crash it rather than
# raise, so it gets headroom; the probes already showed the model runs in exactly the measured size.
VALIDATION_HEADROOM_BYTES: Final = 256


@dataclass(frozen=True)
class ExportResult:
    """What the export wrote and what it measured."""

    path: Path
    size_bytes: int
    onnx_size_bytes: int
    io: str
    op_histogram: dict[str, int]
    inputs: tuple[IoBinding, ...]
    outputs: tuple[IoBinding, ...]
    requantize_ops: int
    transpose_ops: int
    float_nodes: tuple[str, ...]
    validation: Validation
    arena: ArenaMeasurement
    timings_s: dict[str, float]

    @property
    def arena_bytes(self) -> int:
        return self.arena.arena_bytes

    @property
    def notes(self) -> tuple[str, ...]:
        notes = [describe(r) for r in self.validation.runtimes]
        notes.append(f"TFLite-Micro arena {self.arena.arena_bytes:,} bytes (recorded allocation "
                     f"{self.arena.recorded_bytes:,}), measured on the 64-bit host build")
        laid_out = [b for b in self.inputs if b.layout.perm != tuple(range(b.layout.rank))]
        if self.float_nodes:
            notes.append(f"float32 islands (DEQUANTIZE/QUANTIZE around them): {', '.join(self.float_nodes)}")
        for binding in laid_out:
            notes.append(f"input {binding.onnx_name!r} is fed channel-last: TFLite shape "
                         f"{list(binding.tflite_shape)} for ONNX shape {list(binding.onnx_shape)}")
        return tuple(notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "onnx_size_bytes": self.onnx_size_bytes,
            "size_ratio_vs_onnx": round(self.size_bytes / self.onnx_size_bytes, 4) if self.onnx_size_bytes else None,
            "io": self.io,
            "op_histogram": dict(self.op_histogram),
            "inputs": [b.to_dict() for b in self.inputs],
            "outputs": [b.to_dict() for b in self.outputs],
            "requantize_ops": self.requantize_ops,
            "transpose_ops": self.transpose_ops,
            "float_nodes": list(self.float_nodes),
            "validation": self.validation.to_dict(),
            "arena": self.arena.to_dict(),
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
            "notes": list(self.notes),
        }


def export_tflite(qdq_path: Path, out_path: Path, *, io: IoKind = "int8",
                  eval_samples: Mapping[str, np.ndarray] | None = None,
                  float_nodes: Sequence[str] = (), labels: ModelLabels | None = None) -> ExportResult:
    """Lower the int8 QDQ ONNX at `qdq_path` to `out_path` (.tflite), validate it against onnxruntime on
    `eval_samples` (inputs by ONNX name; synthetic inputs over the int8 range when None) and measure its
    TFLite-Micro arena. `float_nodes` were kept float by the quantizer: they become float32 islands. `labels`
    (default: those in the QDQ ONNX's metadata) go into the .tflite's metadata.
    Raises ExportError, leaving no file, when any step fails or results drift."""
    started = time.perf_counter()
    graph = read_qdq(qdq_path, float_nodes)
    carried = labels if labels is not None else read_model_labels(qdq_path)
    lowered = lower_graph(graph, io, description=f"wedge int8 export of {qdq_path.name}",
                          metadata=tflite_metadata(carried) if carried else None)
    lowered_at = time.perf_counter()
    samples, source = _samples(lowered, eval_samples)
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(lowered.data)
    except OSError as exc:
        raise ExportError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    try:
        arena = measure_arena(partial, source=out_path.name)
        measured_at = time.perf_counter()
        validation = validate_tflite(qdq_path, lowered.data, lowered, samples,
                                     arena_bytes=arena.arena_bytes + VALIDATION_HEADROOM_BYTES, source=source)
        if not validation.passed:
            raise ExportDriftError(f"the .tflite drifts from onnxruntime on the int8 model: {validation.problems[0]} "
                                   "— not written; please report the model (the lowering of some op disagrees)",
                                   validation.problems[0])
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    done = time.perf_counter()
    return ExportResult(
        path=out_path,
        size_bytes=len(lowered.data),
        onnx_size_bytes=qdq_path.stat().st_size,
        io=io,
        op_histogram=lowered.op_histogram,
        inputs=lowered.inputs,
        outputs=lowered.outputs,
        requantize_ops=lowered.requantize_ops,
        transpose_ops=lowered.transpose_ops,
        float_nodes=tuple(float_nodes),
        validation=validation,
        arena=arena,
        timings_s={"lower": lowered_at - started, "arena": measured_at - lowered_at,
                   "validate": done - measured_at, "total": done - started},
    )


def _samples(lowered: LoweredModel, eval_samples: Mapping[str, np.ndarray] | None) -> tuple[dict[str, np.ndarray], str]:
    if eval_samples is None:
        return synthetic_samples(lowered), f"{DEFAULT_SAMPLES} synthetic inputs over the int8 input range"
    samples: dict[str, np.ndarray] = {}
    for binding in lowered.inputs:
        if binding.onnx_name not in eval_samples:
            raise ExportError(f"the validation samples have no input {binding.onnx_name!r} "
                              f"(they hold {', '.join(eval_samples) or 'nothing'})")
        array = np.asarray(eval_samples[binding.onnx_name], np.float32)
        if tuple(array.shape[1:]) != tuple(binding.onnx_shape[1:]):
            raise ExportError(f"validation input {binding.onnx_name!r} has shape {list(array.shape)}, the model "
                              f"takes [N, {', '.join(map(str, binding.onnx_shape[1:]))}]")
        samples[binding.onnx_name] = array
    counts = {len(a) for a in samples.values()}
    if len(counts) != 1 or 0 in counts:
        raise ExportError("the validation samples need the same, non-zero number of samples for every input")
    return samples, f"{counts.pop()} evaluation samples"
