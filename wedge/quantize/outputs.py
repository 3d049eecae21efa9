"""What an output's numbers mean: the unit its values are in, and the size of one int8 step of it.

An error of 4.0 says nothing alone; 4.0 logits where one int8 step is 0.25 says the int8 model is 16 steps off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import onnx

from wedge.runtime.artifacts import ModelInfo

# Metadata keys a model may name its output unit with (a regression's "bpm", a distance's "m").
UNIT_KEYS: Final[tuple[str, ...]] = ("unit", "units", "output_unit")
_PROBABILITY_OPS: Final = frozenset({"Softmax", "Sigmoid"})


@dataclass(frozen=True)
class OutputScale:
    """One model output: the unit of its values and the real value of one int8 step (None when float)."""

    name: str
    unit: str
    int8_step: float | None

    def steps(self, error: float) -> float | None:
        """`error` in int8 steps of this output."""
        return None if not self.int8_step else error / self.int8_step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_scales(fp32_path: Path, int8_info: ModelInfo, task: str) -> list[OutputScale]:
    """Units from the fp32 graph (the op making each output, or the model's metadata) and steps from the int8 one."""
    model = onnx.load(str(fp32_path), load_external_data=False)
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    named_unit = next((metadata[key].strip() for key in UNIT_KEYS if metadata.get(key, "").strip()), None)
    steps = {spec.name: spec.quant.scales[0] if spec.quant is not None and len(spec.quant.scales) == 1 else None
             for spec in int8_info.outputs}
    scales = []
    for index, output in enumerate(model.graph.output):
        op = producers.get(output.name)
        if op in _PROBABILITY_OPS:
            unit = "probability"
        elif op == "LogSoftmax":
            unit = "log-probability"
        elif index == 0 and named_unit:
            unit = named_unit
        elif index == 0 and task == "classification":
            unit = "logits"
        else:
            unit = "output units"
        scales.append(OutputScale(output.name, unit, steps.get(output.name)))
    return scales
