"""`--keep-float auto`: keep the layers that add the most noise float, one at a time, until --max-drop holds.

Each round re-quantizes with the chosen calibration method and re-measures the task metric; it stops when the
budget holds, when no layer is left to keep float, or after MAX_ROUNDS.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.quantize.calibration import SampleSet
from wedge.quantize.layers import per_layer_errors
from wedge.quantize.load import PreparedModel
from wedge.quantize.plan import QuantPlan
from wedge.quantize.progress import Progress
from wedge.quantize.report import AccuracyBudget
from wedge.quantize.search import Candidate, search_calibration
from wedge.quantize.stream import StatePairs
from wedge.runtime.engines import Engine

AUTO: Final = "auto"
MAX_ROUNDS: Final = 8


@dataclass(frozen=True)
class AutoFloatStep:
    """One layer kept float by the automatic mode, and the budget's drop after it."""

    nodes: tuple[str, ...]
    op_type: str
    own_sqnr_db: float
    drop_pp: float | None

    def describe(self) -> str:
        drop = "no task metric" if self.drop_pp is None else f"drop {self.drop_pp:.2f} pp"
        return (f"--keep-float auto: {' + '.join(self.nodes)} ({self.op_type}, adds noise at "
                f"{self.own_sqnr_db:.1f} dB SQNR) kept float -> {drop}")

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "op_type": self.op_type, "own_sqnr_db": round(self.own_sqnr_db, 2),
                "drop_pp_after": None if self.drop_pp is None else round(self.drop_pp, 3)}


def keep_worst_float(prepared: PreparedModel, fp32: Engine, calib: SampleSet, eval_set: SampleSet,
                     best: Candidate, plan: QuantPlan, workdir: Path, *, max_drop_pp: float, batch_size: int,
                     task: str, threshold: float, stream: StatePairs, layer_samples: int,
                     floatable: Collection[str] | None, progress: Progress) -> tuple[Candidate, QuantPlan,
                                                                                     list[AutoFloatStep]]:
    """Re-quantize with the worst layers float until `max_drop_pp` holds; `floatable` limits the op types (the
    TFLite export's float lowerings), None allows any."""
    steps: list[AutoFloatStep] = []
    for _ in range(MAX_ROUNDS):
        if not AccuracyBudget.judge(best.evaluation, max_drop_pp).exceeded:
            break
        layers = per_layer_errors(prepared.path, best.path, eval_set, batch_size=batch_size,
                                  max_samples=layer_samples)
        candidates = [layer for layer in sorted(layers, key=lambda layer: layer.own_sqnr_db)
                      if not set(layer.node.split(" + ")) <= set(plan.float_nodes)
                      and (floatable is None or all(op in floatable for op in layer.op_type.split(" + ")))]
        if not candidates:
            break
        worst = candidates[0]
        plan = plan.keeping_float(worst.node.split(" + "))
        best, _, _ = search_calibration(prepared, fp32, calib, eval_set, (best.method,), workdir,
                                        batch_size=batch_size, task=task, progress=progress, plan=plan,
                                        threshold=threshold, stream=stream)
        budget = AccuracyBudget.judge(best.evaluation, max_drop_pp)
        steps.append(AutoFloatStep(tuple(worst.node.split(" + ")), worst.op_type, worst.own_sqnr_db, budget.drop_pp))
    return best, plan, steps
