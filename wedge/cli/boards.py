"""`wedge boards`: list the board profiles, or show one in full.

A thin click layer over `wedge.boards`: human sizes in the tables, exact bytes with --json.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from wedge import boards as board_profiles
from wedge.boards import Board
from wedge.cli.units import human_bytes

# Piped output is grepped and diffed: rather than rich's 80-column default (which wraps file paths), give it
# room; every renderable here is sized to its content (expand=False), so nothing is padded to this width.
_PIPE_WIDTH: Final[int] = 1000
# A reference workload for the latency line in `show`: about one MobileNetV1-0.25 96x96 (MLPerf Tiny VWW).
_EXAMPLE_MACS: Final[int] = 7_500_000


def _human_hz(rate_hz: float) -> str:
    """'64 MHz', '1.7 GHz', '16 kHz', '50 Hz'."""
    for scale, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if rate_hz >= scale:
            return f"{rate_hz / scale:g} {unit}"
    return f"{rate_hz:g} Hz"


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH, highlight=False)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _with_origin(board: Board) -> dict[str, Any]:
    return {**board.to_dict(), "origin": board_profiles.origin(board)}


def _source_label(board: Board) -> str:
    where = board_profiles.origin(board)
    # Paths and user-written names may hold '[', which rich would read as markup.
    return where if where == "built-in" else escape(f"{where}: {board.source}")


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON (exact bytes).")
@click.pass_context
def boards(ctx: click.Context, as_json: bool) -> None:
    """List the board profiles, or show one.

    Built-in profiles, plus TOML files in the folders named by WEDGE_BOARDS_PATH (a user profile with a
    built-in's name overrides it). `wedge boards show NAME` prints one profile in full.
    """
    if ctx.invoked_subcommand is not None:
        return
    profiles = board_profiles.list_boards()
    if as_json:
        _echo_json([_with_origin(board) for board in profiles])
        return
    table = Table(title="Board profiles", title_justify="left")
    for header, right in (("name", False), ("class", False), ("MCU / core", False), ("clock", True),
                          ("flash", True), ("RAM", True), ("model slot", True), ("arena", True),
                          ("runtime", False), ("source", False)):
        table.add_column(header, justify="right" if right else "left", no_wrap=header != "source")
    for board in profiles:
        ram = human_bytes(board.memory.ram_bytes)
        if board.memory.psram_bytes:
            ram += f" + {human_bytes(board.memory.psram_bytes)} PSRAM"
        table.add_row(
            escape(board.name), board.board_class, escape(f"{board.mcu} / {board.compute.core}"),
            _human_hz(board.compute.clock_hz),
            human_bytes(board.memory.flash_bytes), ram, human_bytes(board.budgets.model_slot_bytes),
            human_bytes(board.budgets.arena_bytes), board.compute.runtime, _source_label(board),
        )
    _console().print(table)


@boards.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON (exact bytes).")
def show(name: str, as_json: bool) -> None:
    """Show one board profile in full: memory, budgets, compute, sensors, flashing and BLE."""
    board = board_profiles.load(name)
    if as_json:
        _echo_json(_with_origin(board))
        return
    console = _console()
    header = (f"[bold]{escape(board.title)}[/bold]\n"
              f"name [cyan]{escape(board.name)}[/cyan] · class {board.board_class} · MCU {escape(board.mcu)}\n"
              f"source: {_source_label(board)}")
    for title, body in ((board.name, header), ("memory and budgets", _memory_table(board)),
                        ("compute", _compute_table(board)), ("sensors", _sensor_table(board)),
                        ("flashing", _flashing_table(board)), ("BLE", _ble_table(board))):
        console.print(Panel(body, title=title, title_align="left", expand=False))


def _key_value_table() -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    return table


def _share(part_bytes: int, whole_bytes: int, whole_name: str) -> str:
    percent = 100 * part_bytes / whole_bytes
    return f"{human_bytes(part_bytes)} ({percent:.0f}% of the {human_bytes(whole_bytes)} {whole_name})"


def _memory_table(board: Board) -> Table:
    memory, budgets = board.memory, board.budgets
    table = _key_value_table()
    table.add_row("flash", human_bytes(memory.flash_bytes))
    table.add_row("RAM", human_bytes(memory.ram_bytes))
    table.add_row("PSRAM", human_bytes(memory.psram_bytes) if memory.psram_bytes else "none")
    table.add_row("model slot budget", _share(budgets.model_slot_bytes, memory.flash_bytes, "flash"))
    ram_name = "RAM + PSRAM" if memory.psram_bytes else "RAM"
    table.add_row("arena budget", _share(budgets.arena_bytes, memory.ram_bytes + memory.psram_bytes, ram_name))
    return table


def _compute_table(board: Board) -> Table:
    compute = board.compute
    table = _key_value_table()
    table.add_row("core", escape(compute.core))
    table.add_row("clock", _human_hz(compute.clock_hz))
    table.add_row("cycles per MAC", f"{compute.cycles_per_mac} (estimate; see the profile's comments)")
    table.add_row("runtime", compute.runtime)
    latency_ms = board.estimate_latency_s(_EXAMPLE_MACS) * 1000
    table.add_row("example latency", f"{latency_ms:.1f} ms for {_EXAMPLE_MACS / 1e6:g} M MACs")
    if board.budgets.latency_ms is not None:
        table.add_row("latency budget", f"{board.budgets.latency_ms:g} ms per inference")
    power = compute.active_power_mw
    table.add_row("active power", "- (no datasheet figure in the profile)" if power is None else
                  f"{power:.3g} mW ({compute.active_current_ma:g} mA at {compute.supply_v:g} V, datasheet)")
    return table


def _sensor_table(board: Board) -> Table:
    table = Table()
    for header in ("name", "kind", "rate", "window", "samples", "channels", "window shape"):
        table.add_column(header, justify="left" if header in ("name", "kind", "window shape") else "right")
    for sensor in board.sensors:
        table.add_row(escape(sensor.name), sensor.kind, _human_hz(sensor.rate_hz), f"{sensor.window_s:g} s",
                      str(sensor.window_samples), str(sensor.channels),
                      " x ".join(str(d) for d in sensor.window_shape))
    return table


def _flashing_table(board: Board) -> Table:
    flashing = board.flashing
    table = _key_value_table()
    table.add_row("protocol", flashing.protocol)
    if flashing.images:
        for slots in flashing.images:
            table.add_row(f"image {slots.number} ({slots.role})",
                          f"{flashing.slot_count} x {human_bytes(slots.slot_size_bytes)} at "
                          f"{slots.primary_offset:#x} / {slots.secondary_offset:#x}")
    else:
        table.add_row("slots", f"{flashing.slot_count} x {human_bytes(flashing.slot_size_bytes)}")
    if board.zephyr_boards:
        table.add_row("zephyr boards", ", ".join(board.zephyr_boards))
    table.add_row("mcumgr buffer", f"{flashing.mcumgr_buf_size} B" if flashing.mcumgr_buf_size else "no SMP")
    table.add_row("link rate", f"{flashing.baud:,} baud")
    return table


def _ble_table(board: Board) -> Table:
    table = _key_value_table()
    if board.ble is None:
        table.add_row("BLE", "none")
        return table
    table.add_row("name prefix", escape(board.ble.name_prefix))
    table.add_row("services", ", ".join(board.ble.services))
    table.add_row("ATT MTU", str(board.ble.att_mtu))
    table.add_row("connection interval", f"{board.ble.conn_interval_ms:g} ms")
    security = board.ble.security
    table.add_row("security", f"LE Secure Connections, bonded; {escape(security.pairing_method)}; SMP needs an "
                              f"{'authenticated' if security.smp_permission == 'authenticate' else 'encrypted'} link"
                  if security.required else "off: the link is open (a development board)")
    return table
