"""`wedge emulate`: run a virtual board on a new pty until Ctrl-C, printing its port (again after a cut link).

A thin click layer over `wedge.firmware.virtual`; fault flags set the knobs the control socket also changes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from wedge.boards import load as load_board
from wedge.firmware.virtual.faults import DEFAULT_CUT_DOWN_S, FaultSettings

# The virtual board's console: flashes, boots, resets, advertising and connections, one line each.
CONSOLE_LOGGER = "wedge.firmware.virtual"


def _console_log(board: str) -> None:
    """Board events on stderr, one readable line each ("12:01:02 ring-nrf52840: boot 3: ..."); stdout keeps the
    port announcements (JSON lines with --json) alone."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {board}: %(message)s", datefmt="%H:%M:%S"))
    console = logging.getLogger(CONSOLE_LOGGER)
    console.addHandler(handler)
    console.setLevel(logging.INFO)
    console.propagate = False


def _default_state(board: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wedge" / "boards" / board


@click.command()
@click.option("--board", "board_name", required=True, metavar="NAME", help="Board profile to emulate.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the board's flash and settings (kept across restarts). "
                   "Default: $XDG_STATE_HOME/wedge/boards/NAME.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Public (or private) ed25519 key the bootloader trusts; needed the first time.")
@click.option("--link", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep a symlink to the port here: one stable name even after the port is re-created.")
@click.option("--baud", type=click.IntRange(min=1), help="Pace the UART at this baud rate (8N1); default: no pacing.")
@click.option("--corrupt-rate", type=click.FloatRange(0, 1), default=0.0, help="Chance per received byte of a flipped bit.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0, help="Chance per received byte of losing it.")
@click.option("--cut-after-bytes", type=click.IntRange(min=0), help="Pull the cable after this many received bytes.")
@click.option("--cut-down-s", type=click.FloatRange(min=0), default=DEFAULT_CUT_DOWN_S, show_default=True,
              help="How long a pulled cable stays out.")
@click.option("--hang-after-bytes", type=click.IntRange(min=0), help="Stop answering after this many received bytes.")
@click.option("--power-cut-after-bytes", type=click.IntRange(min=0),
              help="Cut the power in the flash write or erase that crosses this many bytes (the process exits).")
@click.option("--slow-flash-ms", type=click.FloatRange(min=0), default=0.0, help="Extra time per flash page operation.")
@click.option("--fault-seed", type=int, help="Seed for the random faults (repeatable runs).")
@click.option("--ble", "ble_transport", metavar="SPEC",
              help="Also advertise over BLE and stream the booted model's always-on inference, through this "
                   "Bumble transport: tcp-client:127.0.0.1:PORT for the virtual air (`wedge air`), usb:0 for a dongle.")
@click.option("--ble-name", help="Advertised BLE name (default: the board's name prefix).")
@click.option("--ble-rate-hz", type=click.FloatRange(min=0.01), help="Records per second (default: one per window, at least 2).")
@click.option("--ble-interval-ms", type=click.FloatRange(7.5, 4000), help="Connection interval of the link model "
              "(default: the profile's).")
@click.option("--ble-packets-per-event", type=click.IntRange(min=1),
              help="Link-layer packets one connection event carries (default: the link model's).")
@click.option("--firmware", "firmware_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Application image (`wedge pack --firmware`) a new board is provisioned with in image 0. "
                   "Default: wedge's own, signed with --key (which must then be the private key).")
@click.option("--zephyr-stock", is_flag=True,
              help="Answer SMP as Zephyr's smp_svr sample ships: no wedge group, no MCUmgr params, no OS info, "
                   "no bootloader info, no confirming image 1 from the host.")
@click.option("--wedge-group-id", type=click.IntRange(64, 65535), default=96, show_default=True,
              help="SMP group id of wedge's own group (a user group, 64 and up).")
@click.option("--dut-link", type=click.Path(dir_okay=False, path_type=Path),
              help="Serve the MLPerf Tiny DUT protocol on its own pty, symlinked here (a second UART, as on dev kits).")
@click.option("--json", "as_json", is_flag=True, help="Announce the port as one JSON object per line.")
def emulate(board_name: str, state_dir: Path | None, key_path: Path | None, link: Path | None, baud: int | None,
            corrupt_rate: float, drop_rate: float, cut_after_bytes: int | None, cut_down_s: float,
            hang_after_bytes: int | None, power_cut_after_bytes: int | None, slow_flash_ms: float,
            fault_seed: int | None, ble_transport: str | None, ble_name: str | None, ble_rate_hz: float | None,
            ble_interval_ms: float | None, ble_packets_per_event: int | None, firmware_path: Path | None, zephyr_stock: bool, wedge_group_id: int, dut_link: Path | None,
            as_json: bool) -> None:
    """Run a virtual board (SMP over a pty serial port, MCUboot, TFLite-Micro) until Ctrl-C."""
    from wedge.firmware.virtual.board import BoardOptions
    from wedge.firmware.virtual.emulator import PortAnnouncement, run_emulator

    board = load_board(board_name)
    faults = FaultSettings(
        corrupt_rate=corrupt_rate, drop_rate=drop_rate, cut_after_bytes=cut_after_bytes, cut_down_s=cut_down_s,
        hang_after_bytes=hang_after_bytes, power_cut_after_bytes=power_cut_after_bytes,
        slow_flash_ms=slow_flash_ms, seed=fault_seed,
    )
    ble = None
    if ble_transport is not None:
        from wedge.firmware.virtual.ble_supervisor import BleSettings

        ble = BleSettings(transport_spec=ble_transport, name=ble_name, rate_hz=ble_rate_hz,
                          conn_interval_ms=ble_interval_ms, packets_per_event=ble_packets_per_event)
    elif ble_name or ble_rate_hz or ble_interval_ms or ble_packets_per_event:
        raise click.UsageError("--ble-name, --ble-rate-hz, --ble-interval-ms and --ble-packets-per-event go with "
                               "--ble SPEC")
    options = BoardOptions(state_dir=state_dir or _default_state(board.name), key_path=key_path, link=link,
                           baud=baud, faults=faults, ble=ble, stock=zephyr_stock, wedge_group_id=wedge_group_id,
                           dut_link=dut_link, firmware_path=firmware_path)

    def announce(port: PortAnnouncement) -> None:
        if as_json:
            click.echo(json.dumps(port.to_dict()))
            return
        where = f"{port.port} (link {port.link})" if port.link else port.port
        click.echo(f"{port.board}: {port.model or 'no model'} on {where}")
        if port.event:
            click.echo(f"  {port.event}")
        click.echo(f"  state {port.state_dir} · control {port.control} · Ctrl-C to stop")

    _console_log(board.name)
    run_emulator(board, options, announce)
