"""Whether a model file fits a board: its bytes against the model slot, its MACs as an estimated latency.

The arena a model needs is not known from the file alone; only the board's arena budget is reported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wedge.boards import Board
from wedge.runtime.artifacts.model_info import ModelInfo
from wedge.runtime.artifacts.tflm_ops import tflm_unsupported


@dataclass(frozen=True)
class SlotFit:
    """A model on a board: slot use and margin (negative when over), runtime, estimated latency."""

    board: str
    runtime: str
    model_bytes: int
    slot_bytes: int
    margin_bytes: int
    fits: bool
    arena_budget_bytes: int
    latency_s: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "runtime": self.runtime,
            "model_bytes": self.model_bytes,
            "slot_bytes": self.slot_bytes,
            "margin_bytes": self.margin_bytes,
            "fits": self.fits,
            "arena_budget_bytes": self.arena_budget_bytes,
            "latency_s": self.latency_s,
            "notes": list(self.notes),
        }


def _runtime_notes(info: ModelInfo, board: Board) -> list[str]:
    runtime = board.compute.runtime
    if runtime != "tflm":
        return []
    notes: list[str] = []
    if info.format != "tflite":
        notes.append(f"{board.name} runs TFLite-Micro: it needs an int8 .tflite, not .{info.format}")
        return notes
    unsupported = tflm_unsupported(info.op_histogram)
    if unsupported:
        notes.append(f"{board.name} runs TFLite-Micro, which has no kernel for: {', '.join(unsupported)}")
    if not info.quantized:
        notes.append("float model: the latency estimate assumes int8 kernels; float runs several times slower")
    return notes


def slot_fit(info: ModelInfo, board: Board) -> SlotFit:
    """How `info`'s model fits `board`'s model slot, and its estimated latency there."""
    slot_bytes = board.budgets.model_slot_bytes
    margin_bytes = slot_bytes - info.size_bytes
    return SlotFit(
        board=board.name,
        runtime=board.compute.runtime,
        model_bytes=info.size_bytes,
        slot_bytes=slot_bytes,
        margin_bytes=margin_bytes,
        fits=margin_bytes >= 0,
        arena_budget_bytes=board.budgets.arena_bytes,
        latency_s=board.estimate_latency_s(info.macs),
        notes=tuple(_runtime_notes(info, board)),
    )
