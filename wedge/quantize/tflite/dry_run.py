"""The TFLite export tried before calibration: quantize with placeholder ranges, lower, check TFLite-Micro ops.

Placeholder ranges give the same QDQ pattern calibration will (onnxruntime places the pairs by op type, not by
range), so an op the export cannot lower fails in seconds instead of after minutes of calibration.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod
from onnxruntime.quantization.calibrate import TensorData, TensorsData

from wedge.quantize.plan import QuantPlan
from wedge.quantize.static import write_qdq_model
from wedge.quantize.tflite.arena import check_tflm_loads
from wedge.quantize.tflite.convert import IoKind, lower_graph
from wedge.quantize.tflite.errors import ExportError
from wedge.quantize.tflite.graph import FOLDABLE_OPS, read_qdq
from wedge.quantize.tflite.registry import LOWERINGS
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported

PLACEHOLDER_RANGE: Final = (-1.0, 1.0)
_FLOAT: Final = onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class OpCoverage:
    """Per ONNX op type of a model: how many nodes, and whether the TFLite export lowers it."""

    counts: dict[str, int]
    kept_float: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        return sorted(op for op in self.counts if status(op) == "not lowered")

    def to_dict(self) -> dict[str, Any]:
        return {op: {"nodes": count, "status": status(op)} for op, count in sorted(self.counts.items())}


def status(op_type: str) -> str:
    """How the export treats an ONNX op: lowered to TFLite ops, folded away when its inputs are constant (shape
    arithmetic), or not lowered (the dry run names the node)."""
    if op_type in LOWERINGS:
        return "lowered"
    if op_type in FOLDABLE_OPS:
        return "folded if constant"
    return "not lowered"


@dataclass(frozen=True)
class DryRun:
    """What the check found: the model's ONNX ops and the TFLite ops their lowering uses."""

    coverage: OpCoverage
    tflite_ops: dict[str, int]


def op_coverage(model_path: Path, plan: QuantPlan | None = None) -> OpCoverage:
    model = onnx.load(str(model_path), load_external_data=False)
    counts = Counter(n.op_type for n in model.graph.node)
    return OpCoverage(dict(counts), () if plan is None else plan.float_nodes)


def placeholder_ranges(model_path: Path) -> TensorsData:
    """A range for every float tensor a node reads or makes: all the quantizer asks for."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path), load_external_data=False))
    graph = model.graph
    floats = {v.name for v in [*graph.input, *graph.value_info, *graph.output]
              if v.type.tensor_type.elem_type == _FLOAT}
    floats |= {i.name for i in graph.initializer if i.data_type == _FLOAT}
    low, high = (np.array(v, np.float32) for v in PLACEHOLDER_RANGE)
    names = {name for node in graph.node for name in [*node.input, *node.output] if name in floats}
    return TensorsData(CalibrationMethod.MinMax, {name: TensorData(lowest=low, highest=high) for name in names})


def dry_run_export(prepared_path: Path, plan: QuantPlan, io: IoKind = "int8") -> DryRun:
    """Lower `prepared_path` (float ONNX) as the export will after calibration; raises ExportError naming the
    first node it cannot lower, or the TFLite ops TFLite-Micro lacks."""
    with tempfile.TemporaryDirectory(prefix="wedge-dry-run-") as tmp:
        qdq = Path(tmp) / "placeholder.int8.onnx"
        write_qdq_model(prepared_path, placeholder_ranges(prepared_path), qdq, plan)
        try:
            lowered = lower_graph(read_qdq(qdq, plan.float_nodes), io, description="wedge export check")
        except ExportError as exc:
            raise ExportError(f"TFLite export check (before calibration): {exc}") from None
    lacking = tflm_unsupported(lowered.op_histogram)
    if lacking:
        raise ExportError(f"TFLite export check (before calibration): the lowering needs {', '.join(lacking)}, "
                          "which TFLite-Micro does not register; deploy the int8 ONNX with onnxruntime "
                          "(--format onnx)")
    try:
        check_tflm_loads(lowered.data, "the export")
    except ExportError as exc:
        raise ExportError(f"TFLite export check (before calibration): {exc}; keep the op float "
                          "(--keep-float) or deploy the int8 ONNX with onnxruntime (--format onnx)") from None
    return DryRun(op_coverage(prepared_path, plan), lowered.op_histogram)
