"""Stage 8: the quantization report — what was done, what it cost, whether it fits — as data and JSON.

Rendering for people is the CLI's job (and `report_page`'s, for the HTML page); this module only builds the
record and judges the accuracy budget.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wedge.quantize.evaluate import Evaluation
from wedge.quantize.fit import BoardFit
from wedge.quantize.float_ops import FloatOps
from wedge.quantize.labels import ClassNames
from wedge.quantize.layer_cost import LayerCost
from wedge.quantize.layers import LayerError, worst_layers
from wedge.quantize.outputs import OutputScale
from wedge.quantize.search import Candidate, SkippedMethod
from wedge.quantize.tflite.export import ExportResult


@dataclass(frozen=True)
class SizeInfo:
    """Model sizes before and after, and the work the model does."""

    fp32_bytes: int
    int8_bytes: int
    params: int
    macs: int

    @property
    def ratio(self) -> float:
        return self.int8_bytes / self.fp32_bytes if self.fp32_bytes else 0.0


@dataclass(frozen=True)
class AccuracyBudget:
    """The `--max-drop` verdict: the drop in percentage points and on which metric it was measured."""

    max_drop_pp: float | None
    drop_pp: float | None
    metric: str | None  # "accuracy" (with labels), else the primary output's task metric against fp32

    @property
    def exceeded(self) -> bool:
        return self.max_drop_pp is not None and (self.drop_pp is None or self.drop_pp > self.max_drop_pp)

    @classmethod
    def judge(cls, evaluation: Evaluation, max_drop_pp: float | None) -> AccuracyBudget:
        if evaluation.accuracy_drop_pp is not None:
            return cls(max_drop_pp, evaluation.accuracy_drop_pp, "accuracy")
        primary = evaluation.primary
        if primary.metric_pct is not None and primary.metric is not None:
            return cls(max_drop_pp, 100.0 - primary.metric_pct, primary.metric.replace(" ", "_").replace("-", "").lower())
        return cls(max_drop_pp, None, None)


@dataclass(frozen=True)
class QuantizeReport:
    """Everything `wedge quantize` learned, in the order a reader asks for it."""

    source: str
    output: str
    inputs: list[dict[str, Any]]
    notes: tuple[str, ...]
    calibration_source: str
    calibration_samples: int
    evaluation_source: str
    chosen_method: str
    candidates: list[Candidate]
    evaluation: Evaluation
    host_kernels: Evaluation
    layers: list[LayerError]
    size: SizeInfo
    fit: BoardFit | None
    budget: AccuracyBudget
    wall_s: float
    versions: dict[str, str] = field(default_factory=dict)
    tflite: ExportResult | None = None
    skipped_methods: list[SkippedMethod] = field(default_factory=list)
    float_nodes: tuple[str, ...] = ()
    float_ops: list[FloatOps] = field(default_factory=list)
    auto_float: list[Any] = field(default_factory=list)  # AutoFloatStep (auto_float imports this module)
    class_names: ClassNames | None = None
    unit: str | None = None  # a regression output's unit; it and the class names travel in the models' metadata
    layer_costs: list[LayerCost] = field(default_factory=list)
    output_scales: list[OutputScale] = field(default_factory=list)
    html: str | None = None  # where the HTML page of this report is written

    def output_scale(self, name: str) -> OutputScale | None:
        return next((scale for scale in self.output_scales if scale.name == name), None)

    @property
    def worst_layers(self) -> list[LayerError]:
        return worst_layers(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "inputs": self.inputs,
            "notes": list(self.notes),
            "calibration": {"source": self.calibration_source, "samples": self.calibration_samples},
            "evaluation_source": self.evaluation_source,
            "chosen_method": self.chosen_method,
            "candidates": [c.to_dict() for c in self.candidates] + [s.to_dict() for s in self.skipped_methods],
            "kept_float": list(self.float_nodes),
            "float_ops_left": [f.to_dict() for f in self.float_ops],
            "auto_float": [step.to_dict() for step in self.auto_float],
            "labels": None if self.class_names is None else self.class_names.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "outputs": [scale.to_dict() for scale in self.output_scales],
            "onnxruntime_int8_kernels": self.host_kernels.to_dict(),
            "size": {**asdict(self.size), "ratio": self.size.ratio},
            "worst_layers": [_layer_dict(layer) for layer in self.worst_layers],
            "layers": [_layer_dict(layer) for layer in self.layers],
            "layer_costs": [cost.to_dict() for cost in self.layer_costs],
            "board_fit": None if self.fit is None else self.fit.to_dict(),
            "tflite": None if self.tflite is None else self.tflite.to_dict(),
            "accuracy_budget": {**asdict(self.budget), "exceeded": self.budget.exceeded},
            "wall_s": round(self.wall_s, 3),
            "versions": self.versions,
            "unit": self.unit,
            "html": self.html,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def _layer_dict(layer: LayerError) -> dict[str, Any]:
    return {**asdict(layer), "own_sqnr_db": layer.own_sqnr_db}
