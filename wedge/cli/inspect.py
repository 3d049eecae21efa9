"""`wedge inspect MODEL`: what a .onnx or .tflite file holds, and with --board whether it fits that board.

A thin click layer over `wedge.runtime.artifacts` (and, for a .tflite, the TFLite-Micro arena measurement of
`wedge.quantize.tflite.arena`): rich tables for people, exact numbers with --json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wedge.boards import load as load_board
from wedge.cli.units import human_bytes
from wedge.quantize.tflite.arena import ArenaMeasurement, TflmRefusedError, measure_arena
from wedge.runtime.artifacts import ModelInfo, SlotFit, inspect_model, slot_fit
from wedge.runtime.artifacts.tflm_ops import tflm_supports
from wedge.runtime.types import TensorSpec

# Piped output is grepped: give rich room instead of its 80-column default, which wraps tensor names.
_PIPE_WIDTH: Final[int] = 1000


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH, highlight=False)


def _human_count(count: int) -> str:
    """7_489_664 -> '7.49 M'; small counts stay exact."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)


def _summary_table(info: ModelInfo) -> Table:
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("format", info.format)
    table.add_row("size", f"{human_bytes(info.size_bytes)} ({info.size_bytes:,} bytes)")
    table.add_row("params", f"{info.param_count:,}")
    table.add_row("weights", human_bytes(info.weight_bytes))
    table.add_row("MACs", f"{_human_count(info.macs)} ({info.macs:,})")
    table.add_row("opset", "-" if info.opset is None else str(info.opset))
    table.add_row("quantized", "yes" if info.quantized else "no (float)")
    return table


def _quant_cells(spec: TensorSpec) -> tuple[str, str]:
    if spec.quant is None:
        return "-", "-"
    if spec.quant.per_axis:
        return f"{len(spec.quant.scales)} scales (axis {spec.quant.axis})", "per axis"
    return f"{spec.quant.scales[0]:.6g}", str(spec.quant.zero_points[0])


def _tensor_table(info: ModelInfo) -> Table:
    table = Table(title="inputs and outputs", title_justify="left")
    for header in ("", "name", "shape", "dtype", "scale", "zero point"):
        table.add_column(header)
    for role, specs in (("input", info.inputs), ("output", info.outputs)):
        for spec in specs:
            scale, zero_point = _quant_cells(spec)
            table.add_row(role, escape(spec.name), escape(spec.shape_text()), str(spec.dtype), scale, zero_point)
    return table


def _op_table(info: ModelInfo) -> Table:
    table = Table(title="operators", title_justify="left")
    table.add_column("op")
    table.add_column("count", justify="right")
    if info.format == "tflite":
        table.add_column("TFLM")
    for name, count in info.op_histogram.items():
        cells = [escape(name), str(count)]
        if info.format == "tflite":
            cells.append("yes" if tflm_supports(name) else "[red]no[/red]")
        table.add_row(*cells)
    return table


def _fit_table(fit: SlotFit) -> Table:
    table = Table(title=f"on board {escape(fit.board)}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    verdict = "[green]fits[/green]" if fit.fits else "[red]does not fit[/red]"
    share = 100 * fit.model_bytes / fit.slot_bytes
    used = f"{human_bytes(fit.model_bytes)} of {human_bytes(fit.slot_bytes)} ({share:.0f}%)"
    table.add_row("model slot", f"{verdict}: {used}")
    margin = human_bytes(abs(fit.margin_bytes))
    table.add_row("margin", f"{margin} free" if fit.fits else f"{margin} over")
    table.add_row("runtime", fit.runtime)
    table.add_row("arena budget", human_bytes(fit.arena_budget_bytes))
    table.add_row("est. latency", f"{fit.latency_s * 1000:.1f} ms")
    return table


def _arena_table(arena: ArenaMeasurement, fit: SlotFit | None) -> Table:
    table = Table(title="TFLite-Micro arena (measured)", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("smallest arena", f"{human_bytes(arena.arena_bytes)} ({arena.arena_bytes:,} bytes, "
                                    f"{arena.probes} probes)")
    table.add_row("recorded allocation", f"{arena.recorded_bytes:,} bytes (head {arena.recorded_head_bytes:,}, "
                                         f"tail {arena.recorded_tail_bytes:,})")
    if fit is not None:
        fits = arena.arena_bytes <= fit.arena_budget_bytes
        verdict = "[green]fits[/green]" if fits else "[red]does not fit[/red]"
        table.add_row(f"on {escape(fit.board)}", f"{verdict}: {human_bytes(arena.arena_bytes)} of "
                                                 f"{human_bytes(fit.arena_budget_bytes)} arena budget")
    return table


def _measure(info: ModelInfo) -> tuple[ArenaMeasurement | None, str | None]:
    """The measured TFLM arena of a .tflite, or why TFLite-Micro refuses it."""
    try:
        return measure_arena(Path(info.path), source=Path(info.path).name), None
    except TflmRefusedError as exc:
        return None, str(exc)


def _print_notes(console: Console, notes: tuple[str, ...]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")


@click.command()
@click.argument("model")
@click.option("--board", "board_name", metavar="NAME", help="Check the model against this board profile.")
@click.option("--no-arena", is_flag=True, help="Do not measure a .tflite's TFLite-Micro arena (a few seconds).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="For a signed .img: also check it is signed by this (public) key.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (exact bytes and MACs).")
def inspect(model: str, board_name: str | None, no_arena: bool, key_path: Path | None, as_json: bool) -> None:
    """Show a model's inputs, outputs, operators, parameters and MACs (.onnx or .tflite).

    For a .tflite, also the smallest TFLite-Micro arena it runs in, or why TFLite-Micro refuses it.
    For a signed image (.img from `wedge pack`), its manifest, with its SHA-256 and signature verified.
    """
    if Path(model).suffix.lower() == ".img":
        from wedge.cli.image_render import show_image_file

        show_image_file(model, key_path, as_json)
        return
    board = load_board(board_name) if board_name is not None else None
    info = inspect_model(model)
    fit = slot_fit(info, board) if board is not None else None
    arena, refusal = _measure(info) if info.format == "tflite" and not no_arena else (None, None)
    if as_json:
        data: dict[str, Any] = info.to_dict()
        if fit is not None:
            data["board"] = fit.to_dict()
        if arena is not None or refusal is not None:
            data["tflm_arena"] = arena.to_dict() if arena is not None else {"refused": refusal}
        click.echo(json.dumps(data, indent=2))
        return
    console = _console()
    # The path goes on its own line: as a table title it would be wrapped to the table's width.
    console.print(f"[bold]{escape(info.path)}[/bold]")
    console.print(_summary_table(info))
    console.print(_tensor_table(info))
    console.print(_op_table(info))
    _print_notes(console, info.notes)
    if fit is not None:
        console.print(_fit_table(fit))
        _print_notes(console, fit.notes)
    if arena is not None:
        console.print(_arena_table(arena, fit))
    if refusal is not None:
        console.print(f"[red]{escape(refusal)}[/red]")
