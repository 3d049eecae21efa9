"""Stage 7: does the int8 model fit the board — flash slot, RAM for activations, latency against its budget,
and the energy of one inference where the profile has a power figure.

RAM is an estimate from tensor lifetimes, unless the TFLite export measured the real TFLM arena.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx

from wedge.boards import Board
from wedge.runtime.artifacts import ModelInfo, SlotFit, slot_fit

_FUSED_ACTIVATIONS: Final = frozenset({"Relu", "Clip", "Relu6"})


@dataclass(frozen=True)
class BoardFit:
    """The verdict for one model on one board: the flash slot (from the artifact) and RAM."""

    slot: SlotFit
    activation_peak_bytes: int
    ram_needed_bytes: int
    fits_ram: bool
    notes: tuple[str, ...]
    ram_measured: bool = False
    latency_budget_ms: float | None = None
    latency_budget_source: str | None = None  # "--latency-budget-ms" or "profile budgets.latency_ms"
    energy_uj: float | None = None  # estimated energy of one inference (profile power x estimated latency)
    power_mw: float | None = None

    @property
    def latency_ms(self) -> float:
        return self.slot.latency_s * 1000

    @property
    def fits_latency(self) -> bool | None:
        """Whether the estimated latency is within the budget; None without a budget."""
        return None if self.latency_budget_ms is None else self.latency_ms <= self.latency_budget_ms

    @property
    def fits(self) -> bool:
        """Flash and RAM: what makes a model unusable on the board. A slow model still runs (see fits_latency)."""
        return self.slot.fits and self.fits_ram

    def to_dict(self) -> dict[str, Any]:
        return {**self.slot.to_dict(), "fits_flash": self.slot.fits, "activation_peak_bytes":
                self.activation_peak_bytes, "ram_needed_bytes": self.ram_needed_bytes,
                "ram_source": "measured TFLM arena" if self.ram_measured else "estimate", "fits_ram": self.fits_ram,
                "latency_ms": self.latency_ms, "latency_budget_ms": self.latency_budget_ms,
                "latency_budget_source": self.latency_budget_source, "fits_latency": self.fits_latency,
                "power_mw": self.power_mw, "energy_per_inference_uj": self.energy_uj,
                "fits": self.fits, "notes": [*self.slot.notes, *self.notes]}


def activation_peak_bytes(model_path: Path, bytes_per_element: int = 1) -> int:
    """Peak bytes of simultaneously live activations, walking the graph in order (a greedy arena lower bound).

    A tensor lives from the node that makes it to the last node that reads it; graph inputs live from the
    start and outputs to the end, as in TFLite-Micro's planner. Weights are not counted (they stay in flash).
    """
    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path), load_external_data=False))
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type in ("Constant", "DequantizeLinear") and
                  all(i in constants for i in n.input) for o in n.output}
    sizes: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.tensor_type.HasField("shape"):
            # A symbolic dim is the batch: the board runs one sample at a time.
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                    for d in value.type.tensor_type.shape.dim]
            sizes[value.name] = int(np.prod(dims)) * bytes_per_element
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            last_use[name] = index
    end = len(graph.node)
    for out in graph.output:
        last_use[out.name] = end
    live = {i.name for i in graph.input if i.name not in constants}
    peak = sum(sizes.get(n, 0) for n in live)
    for index, node in enumerate(graph.node):
        if node.op_type in _FUSED_ACTIVATIONS and node.input and last_use.get(node.input[0]) == index:
            # TFLite fuses these into the op before them: no second buffer for the activation output.
            live.discard(node.input[0])
        live |= {o for o in node.output if o and o not in constants}
        peak = max(peak, sum(sizes.get(n, 0) for n in live))
        live = {n for n in live if last_use.get(n, -1) > index}
    return peak


def assess_fit(board: Board, int8_info: ModelInfo, activation_bytes: int,
               measured_arena_bytes: int | None = None, latency_budget_ms: float | None = None) -> BoardFit:
    """Compare the int8 model with the board's budgets; `activation_bytes` from `activation_peak_bytes`.

    `int8_info` is the file that goes to the board (the .tflite when exported); `measured_arena_bytes`, the
    TFLM arena measured by the TFLite export, replaces the estimate on TFLM boards. `latency_budget_ms`
    (--latency-budget-ms) replaces the profile's `budgets.latency_ms`.
    """
    slot = slot_fit(int8_info, board)
    notes: list[str] = []
    measured = measured_arena_bytes is not None and board.compute.runtime == "tflm"
    if measured and measured_arena_bytes is not None:
        ram_needed = measured_arena_bytes
        notes.append("RAM is the TFLite-Micro arena measured in the interpreter (64-bit host build; a 32-bit "
                     "MCU needs slightly less)")
    elif board.compute.runtime == "tflm":
        # TFLM keeps weights in flash and plans activations in the arena (plus a little per-op bookkeeping).
        ram_needed = activation_bytes
        notes.append("RAM is an estimate from tensor lifetimes; export to TFLite to measure the TFLM arena")
    else:
        # onnxruntime/LiteRT on an application processor load the weights into RAM beside the activations.
        ram_needed = activation_bytes + int8_info.size_bytes
        notes.append("RAM counts the weights (loaded into memory) plus the activation peak")
    notes.append(f"latency from {int8_info.macs:,} MACs x {board.compute.cycles_per_mac} cycles/MAC at "
                 f"{board.compute.clock_hz / 1e6:g} MHz (profile estimate, not a measurement)")
    budget_source = None
    if latency_budget_ms is not None:
        budget_source = "--latency-budget-ms"
    elif board.budgets.latency_ms is not None:
        latency_budget_ms, budget_source = board.budgets.latency_ms, "profile budgets.latency_ms"
    energy_j = board.estimate_energy_j(slot.latency_s)
    power_mw = board.compute.active_power_mw
    if energy_j is not None and power_mw is not None:
        notes.append(f"energy per inference = {power_mw:.3g} mW active power ({board.compute.active_current_ma:g} mA "
                     f"at {board.compute.supply_v:g} V, the profile's datasheet figure) x the latency estimate; "
                     "sensor, radio and sleep current not counted")
    return BoardFit(slot=slot, activation_peak_bytes=activation_bytes, ram_needed_bytes=ram_needed,
                    fits_ram=ram_needed <= board.budgets.arena_bytes, notes=tuple(notes), ram_measured=measured,
                    latency_budget_ms=latency_budget_ms, latency_budget_source=budget_source,
                    energy_uj=None if energy_j is None else energy_j * 1e6, power_mw=power_mw)
