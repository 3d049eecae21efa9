"""Tools over model files (`wedge.runtime.artifacts`, the TFLite-Micro arena probe): inspect a model, check it
fits a board. A model is a path in the workspace or a bundled sample (`wedge.samples`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from wedge.mcp.errors import McpError
from wedge.mcp.policy import Policy
from wedge.mcp.progress import run_in_worker
from wedge.mcp.tools.base import READ_ONLY, wedge_tool
from wedge.mcp.tools.boards import load_board
from wedge.quantize.tflite.arena import TflmRefusedError, measure_arena
from wedge.runtime.artifacts import ModelInfo, inspect_model, slot_fit
from wedge.samples import Sample, get_sample


def model_path(policy: Policy, model: str | None, sample: str | None) -> Path:
    """A model file: `model` inside the workspace, or the bundled `sample` (digits, ppg_quality)."""
    if (model is None) == (sample is None):
        raise McpError("give either model (a path in the workspace) or sample (a bundled model name)")
    if sample is not None:
        return bundled(sample).model_path
    assert model is not None
    return policy.readable(model, "model")


def bundled(name: str) -> Sample:
    return get_sample(name)


class Arena(BaseModel):
    """The smallest TFLite-Micro arena the .tflite runs in (measured), or why TFLite-Micro refuses it."""

    arena_bytes: int | None
    refused: str | None = None
    details: dict[str, Any] | None = None


class ModelReport(BaseModel):
    """What `wedge inspect MODEL --json` prints: tensors, quantization, ops, MACs, size."""

    model: dict[str, Any]
    tflm_arena: Arena | None = None


class FitReport(BaseModel):
    """A model on a board: model slot use, arena budget (and the measured arena of a .tflite), latency."""

    board: str
    model: str
    format: str
    runtime: str
    fits: bool
    model_bytes: int
    slot_bytes: int
    margin_bytes: int
    arena_budget_bytes: int
    arena_bytes: int | None
    arena_fits: bool | None
    latency_s: float
    macs: int
    quantized: bool
    notes: list[str]


def _arena(info: ModelInfo) -> Arena | None:
    if info.format != "tflite":
        return None
    try:
        measured = measure_arena(Path(info.path), source=Path(info.path).name)
    except TflmRefusedError as exc:
        return Arena(arena_bytes=None, refused=str(exc))
    return Arena(arena_bytes=measured.arena_bytes, details=measured.to_dict())


def inspect_file(path: Path, measure: bool) -> ModelReport:
    info = inspect_model(path)
    return ModelReport(model=info.to_dict(), tflm_arena=_arena(info) if measure else None)


def check_model_fit(path: Path, board_name: str, label: str) -> FitReport:
    board = load_board(board_name)
    info = inspect_model(path)
    fit = slot_fit(info, board)
    arena = _arena(info)
    notes = [*info.notes, *fit.notes]
    if arena is not None and arena.refused is not None:
        notes.append(arena.refused)
    arena_bytes = None if arena is None else arena.arena_bytes
    return FitReport(
        board=board.name, model=label, format=info.format, runtime=fit.runtime, fits=fit.fits,
        model_bytes=fit.model_bytes, slot_bytes=fit.slot_bytes, margin_bytes=fit.margin_bytes,
        arena_budget_bytes=fit.arena_budget_bytes, arena_bytes=arena_bytes,
        arena_fits=None if arena_bytes is None else arena_bytes <= fit.arena_budget_bytes,
        latency_s=fit.latency_s, macs=info.macs, quantized=info.quantized, notes=notes,
    )


def register(server: MCPServer, policy: Policy) -> None:

    @wedge_tool(server, READ_ONLY, name="inspect_model")
    async def inspect_model_file(model: str | None = None, sample: str | None = None,
                                 measure_arena: bool = True) -> ModelReport:
        """What a .onnx or .tflite holds: inputs/outputs with quantization parameters, op histogram, parameters,
        MACs, size; for a .tflite also the smallest TFLite-Micro arena (a few seconds; measure_arena=false skips
        it). `model` is a path in the workspace, or `sample` a bundled model (digits, ppg_quality)."""
        path = model_path(policy, model, sample)
        return await run_in_worker(lambda: inspect_file(path, measure_arena))

    @wedge_tool(server, READ_ONLY)
    async def check_fit(board: str, model: str | None = None, sample: str | None = None) -> FitReport:
        """Whether a model fits a board: its bytes against the board's model slot, its TFLite-Micro arena (measured,
        for a .tflite) against the arena budget, the estimated latency (MACs x cycles/MAC / clock), and notes such as
        missing TFLite-Micro kernels or a float model on an int8 board."""
        path = model_path(policy, model, sample)
        label = sample if sample is not None else policy.relative(path)
        return await run_in_worker(lambda: check_model_fit(path, board, label))
