"""Runs one virtual board as a process until SIGINT/SIGTERM: boot, announce the port, serve SMP and control.

`run_emulator` is what `wedge emulate` calls; each (re)appearance of the port is announced, since a cut
link comes back as a new pty.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedge.boards import Board
from wedge.firmware.virtual.board import BoardOptions, VirtualBoard
from wedge.firmware.virtual.control import serve_control


@dataclass(frozen=True)
class PortAnnouncement:
    """Where the board can be reached; printed by `wedge emulate` each time the port (re)appears."""

    board: str
    port: str
    link: Path | None
    state_dir: Path
    control: Path
    model: str | None
    event: str | None
    dut_link: Path | None = None
    firmware: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "port": self.port,
            "link": None if self.link is None else str(self.link),
            "state": str(self.state_dir),
            "control": str(self.control),
            "model": self.model,
            "event": self.event,
            "dut_link": None if self.dut_link is None else str(self.dut_link),
            "firmware": self.firmware,
        }


async def serve_board(board: Board, options: BoardOptions, announce: Callable[[PortAnnouncement], None]) -> None:
    """Run the board until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    virtual: VirtualBoard | None = None

    def on_port(path: str) -> None:
        assert virtual is not None
        announce(_announcement(virtual, path))

    virtual = VirtualBoard(board, options, on_port)
    server = None
    try:
        server = await serve_control(virtual, virtual.state.control_path)
        path = await virtual.start()
        announce(_announcement(virtual, path))
        await stop.wait()
    finally:
        if server is not None:
            server.close()
        await virtual.stop()
        if virtual.state.control_path.exists():
            virtual.state.control_path.unlink()


def _announcement(virtual: VirtualBoard, path: str) -> PortAnnouncement:
    status = virtual.status
    model = f"{status.model_name} {status.model_version}" if status.model_name else None
    return PortAnnouncement(
        board=virtual.board.name,
        port=path,
        link=virtual.options.link,
        state_dir=virtual.options.state_dir,
        control=virtual.state.control_path,
        model=model,
        event=status.event,
        dut_link=virtual.options.dut_link,
        firmware=None if virtual.firmware is None else virtual.firmware.label,
    )


def run_emulator(board: Board, options: BoardOptions, announce: Callable[[PortAnnouncement], None]) -> None:
    asyncio.run(serve_board(board, options, announce))
