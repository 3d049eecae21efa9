"""The HIL tool (`wedge.hil.runner.run_bench`): the built-in suites on the boards of a bench map, with reports.

It flashes the boards and writes reports, so it needs both --allow-flash and --allow-write. The map's key files
must lie inside the workspace like every other file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from wedge.hil.board_map import load_board_map
from wedge.hil.runner import SUITES, run_bench
from wedge.mcp.errors import OutsideWorkspace
from wedge.mcp.policy import Policy
from wedge.mcp.progress import ProgressRelay, progress_relay, run_in_worker
from wedge.mcp.tools.base import CHANGES_DEVICE, wedge_tool

SuiteName = Literal["flash", "accuracy", "latency", "faults", "ble"]


class HilResult(BaseModel):
    """report.json of the run (per board: tests with outcomes and messages, wall time) and the report files."""

    passed: bool
    report: dict[str, Any]
    files: list[str]


def _check_keys(policy: Policy, board_map: Path) -> None:
    for board in load_board_map(board_map).boards:
        if board.key_path is not None and not board.key_path.resolve().is_relative_to(policy.workspace):
            raise OutsideWorkspace(f"board {board.name} of {board_map.name} names key {board.key_path}, "
                                   "outside the workspace")


def _run(policy: Policy, model: Path, board_map: Path, report_dir: Path, eval_path: Path | None,
         boards: tuple[str, ...], suites: tuple[str, ...], samples: int, relay: ProgressRelay) -> HilResult:
    _check_keys(policy, board_map)
    started: list[str] = []

    def on_start(name: str) -> None:
        started.append(name)
        relay.post_from_thread(len(started), None, f"{name}: running", first=True)

    result = run_bench(model, board_map, report_dir, eval_path=eval_path, boards=boards, suites=suites,
                       samples=samples, on_start=on_start)
    report = json.loads(json.dumps(result.to_dict(), default=str))
    return HilResult(passed=result.passed, report=report,
                     files=[policy.relative(path) for path in result.files.values()])


def register(server: MCPServer, policy: Policy) -> None:

    @wedge_tool(server, CHANGES_DEVICE)
    async def run_hil_suite(ctx: Context, model: str, board_map: str, report: str = "hil-report",
                            eval_set: str | None = None, boards: list[str] | None = None,
                            suites: list[SuiteName] | None = None,
                            samples: Annotated[int, Field(ge=1)] = 32) -> HilResult:
        """Run the hardware-in-the-loop suites (flash, accuracy, latency, faults, ble) for a .tflite on the boards
        of a bench.toml (port = "virtual" starts a virtual board), one worker per board, as `wedge hil run`.
        Writes report.json, junit.xml and report.html into `report`. Flashes the boards: needs --allow-flash and
        --allow-write."""
        policy.require_flash("run_hil_suite")
        report_dir = policy.writable(report, "run_hil_suite", "report folder")
        model_path = policy.readable(model, "model")
        map_path = policy.readable(board_map, "board map")
        eval_path = policy.readable(eval_set, "eval set") if eval_set is not None else None
        async with progress_relay(ctx) as relay:
            return await run_in_worker(
                lambda: _run(policy, model_path, map_path, report_dir, eval_path, tuple(boards or ()),
                             tuple(suites or SUITES), samples, relay), relay)
