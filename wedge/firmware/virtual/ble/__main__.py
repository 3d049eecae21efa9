"""`python -m wedge.firmware.virtual.ble`: one board's BLE peripheral as its own process, without the serial side.

Prints one JSON line when advertising, and one `{"event": ...}` line for what the ring's display shows and how each
pairing ends; takes JSON commands on stdin (faults, status, its button and keypad, see COMMANDS) and exits cleanly
on SIGINT/SIGTERM; its device id, epoch, record buffer and bonds live in --state-dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any, Final

from wedge.ble_bonds import BondStoreError
from wedge.boards import BoardError
from wedge.boards import load as load_board
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.virtual.ble.device import (
    DEFAULT_RING_RECORDS,
    BleDevice,
    BleDeviceInfo,
    BleDeviceOptions,
    run_ble_device,
)
from wedge.firmware.virtual.ble.link_model import DEFAULT_PACKETS_PER_EVENT, LinkModel
from wedge.runtime.types import EngineError

COMMANDS: Final[str] = (
    '{"cmd": "status"} | {"cmd": "disconnect"} | {"cmd": "silent", "on": true|false} | '
    '{"cmd": "drop", "frames": N} | {"cmd": "malformed", "count": N} | {"cmd": "button", "yes": true|false} | '
    '{"cmd": "passkey", "passkey": N} | {"cmd": "unpair"}'
)


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def _apply(device: BleDevice, command: dict[str, Any]) -> dict[str, Any]:
    name = command.get("cmd")
    if name == "status":
        return {"status": device.status()}
    if name == "disconnect":
        return {"disconnected": await device.disconnect_all()}
    if name == "silent":
        device.faults.silent = bool(command.get("on", True))
        return {"silent": device.faults.silent}
    if name == "drop":
        device.faults.drop_frames += int(command.get("frames", 1))
        return {"drop_frames": device.faults.drop_frames}
    if name == "malformed":
        device.faults.malformed += int(command.get("count", 1))
        return {"malformed": device.faults.malformed}
    if name == "button":
        return {"button": device.security.panel.press(bool(command.get("yes", True)))}
    if name == "passkey":
        return {"passkey": device.security.panel.type_passkey(int(command.get("passkey", -1)))}
    if name == "unpair":
        return {"unpaired": await device.unpair_all()}
    return {"error": f"unknown command {name!r}: expected {COMMANDS}"}


def _stdin_is_a_stream() -> bool:
    """A pipe, socket or terminal can be watched by the event loop; a file or /dev/null cannot."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(sys.stdin.fileno())


async def _commands(device: BleDevice) -> None:
    """Serve stdin commands until stdin closes (a parent that never writes simply closes it)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
        except ValueError as exc:
            _emit({"error": f"bad command: {exc}"})
            continue
        _emit(await _apply(device, command))


async def _main(args: argparse.Namespace) -> None:
    board = load_board(args.board)
    base = LinkModel.for_board(board, enabled=not args.no_link_model, packets_per_event=args.packets_per_event)
    link = LinkModel(args.conn_interval_ms or base.conn_interval_ms, base.packets_per_event,
                     args.att_mtu or base.att_mtu, base.enabled)
    options = BleDeviceOptions(name=args.name, link=link, rate_hz=args.rate_hz, ring_records=args.ring_records,
                               state_dir=args.state_dir, seed=args.seed, on_event=lambda event: _emit({"event": event}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []

    def ready(device: BleDevice, info: BleDeviceInfo) -> None:
        _emit({"ready": info.to_dict()})
        if _stdin_is_a_stream():
            tasks.append(asyncio.create_task(_commands(device)))

    try:
        await run_ble_device(board, args.model, transport_spec=args.transport, options=options, stop=stop,
                             on_ready=ready)
    finally:
        for task in tasks:
            task.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wedge.firmware.virtual.ble", description=__doc__)
    parser.add_argument("--board", required=True, help="board profile, e.g. ring-nrf52840")
    parser.add_argument("--model", required=True, type=Path, help=".tflite (run in TFLite-Micro) or .onnx model")
    parser.add_argument("--transport", required=True, help="Bumble HCI transport, e.g. tcp-client:127.0.0.1:PORT")
    parser.add_argument("--name", help="advertised name (default: the board's BLE name prefix)")
    parser.add_argument("--rate-hz", type=float, help="records per second (default: one per model window)")
    parser.add_argument("--state-dir", type=Path,
                        help="keep the device id, boot epoch, record buffer and bonds here "
                             "(a new folder: a new device)")
    parser.add_argument("--ring-records", type=int, default=DEFAULT_RING_RECORDS, help="record buffer size")
    parser.add_argument("--no-link-model", action="store_true", help="send at once instead of in connection events")
    parser.add_argument("--packets-per-event", type=int, default=DEFAULT_PACKETS_PER_EVENT)
    parser.add_argument("--conn-interval-ms", type=float, help="default: the board profile's")
    parser.add_argument("--att-mtu", type=int, help="the largest ATT MTU offered (default: the board profile's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except (BoardError, BondStoreError, EngineError, VirtualBoardError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
