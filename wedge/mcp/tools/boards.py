"""Tools over the board profiles (`wedge.boards`): list them, show one."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from wedge import boards as board_profiles
from wedge.boards import Board
from wedge.mcp.policy import Policy
from wedge.mcp.progress import run_in_worker
from wedge.mcp.tools.base import READ_ONLY, wedge_tool


class BoardSummary(BaseModel):
    name: str
    title: str
    board_class: str
    mcu: str
    runtime: str
    clock_hz: float
    flash_bytes: int
    ram_bytes: int
    model_slot_bytes: int
    arena_bytes: int
    origin: str


class BoardList(BaseModel):
    boards: list[BoardSummary]


class BoardProfile(BaseModel):
    """A profile in full, as `wedge boards show NAME --json` prints it."""

    profile: dict[str, Any]
    origin: str


def summary(board: Board) -> BoardSummary:
    return BoardSummary(
        name=board.name, title=board.title, board_class=board.board_class, mcu=board.mcu,
        runtime=board.compute.runtime, clock_hz=board.compute.clock_hz, flash_bytes=board.memory.flash_bytes,
        ram_bytes=board.memory.ram_bytes, model_slot_bytes=board.budgets.model_slot_bytes,
        arena_bytes=board.budgets.arena_bytes, origin=board_profiles.origin(board),
    )


def load_board(name: str) -> Board:
    return board_profiles.load(name)


def profile(board: Board) -> BoardProfile:
    return BoardProfile(profile=board.to_dict(), origin=board_profiles.origin(board))


def register(server: MCPServer, policy: Policy) -> None:
    del policy  # profiles are package data and WEDGE_BOARDS_PATH folders the operator chose

    @wedge_tool(server, READ_ONLY)
    async def list_boards() -> BoardList:
        """The board profiles wedge knows (built-in and WEDGE_BOARDS_PATH): memory, model slot and arena budgets,
        runtime. Same data as `wedge boards --json`."""
        boards = await run_in_worker(board_profiles.list_boards)
        return BoardList(boards=[summary(board) for board in boards])

    @wedge_tool(server, READ_ONLY)
    async def board_profile(name: str) -> BoardProfile:
        """One board profile in full (memory, budgets, compute, sensors, flashing, BLE), as `wedge boards show
        NAME --json`."""
        return profile(await run_in_worker(lambda: load_board(name)))
