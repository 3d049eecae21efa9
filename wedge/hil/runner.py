"""`wedge hil run`: the built-in suites on every board of a map, one pytest worker process per board, in parallel.

Each worker writes its JUnit XML and JSON record under `<report>/<board>/`; the runner merges them into
`report.json`, `junit.xml` and `report.html`. A board that fails to start fails its own tests, not the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from wedge.hil.board_map import BenchBoard, load_board_map
from wedge.hil.errors import HilError
from wedge.hil.report import write_reports
from wedge.hil.results import BenchRun, BoardRun

SUITES_DIR: Final[Path] = Path(__file__).resolve().parent / "suites"
SUITES: Final[tuple[str, ...]] = ("flash", "accuracy", "latency", "faults", "ble")
SMOKE_SUITES: Final[tuple[str, ...]] = ("flash", "accuracy", "latency")
BOARD_TIMEOUT_S: Final[float] = 900.0


def _command(board: BenchBoard, model: Path, eval_path: Path | None, board_map: Path, folder: Path,
             suites: Sequence[str], samples: int) -> list[str]:
    files = [str(SUITES_DIR / f"test_{name}.py") for name in suites]
    command = [sys.executable, "-m", "pytest", "-p", "wedge.hil.plugin", *files, "--board-map", str(board_map),
               "--board", board.name, "--model", str(model), "--hil-samples", str(samples),
               "--hil-json", str(folder / "results.json"), "--junitxml", str(folder / "junit.xml"),
               "-o", "junit_family=xunit1", "-o", f"junit_suite_name={board.name}", "-p", "no:cacheprovider",
               "--rootdir", str(folder), "-q", "--no-header", "-rfE"]
    if eval_path is not None:
        command += ["--eval", str(eval_path)]
    return command


def _collect(board: BenchBoard, process: subprocess.Popen[bytes], folder: Path, started: float,
             timeout_s: float) -> BoardRun:
    problem = None
    try:
        exit_code = process.wait(timeout=max(1.0, timeout_s - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        exit_code = process.wait()
        problem = f"the worker for {board.name} did not finish within {timeout_s:.0f} s"
    wall = time.monotonic() - started
    results = folder / "results.json"
    tests: tuple[dict[str, Any], ...] = ()
    if results.exists():
        tests = tuple(json.loads(results.read_text())["tests"])
    elif problem is None:
        tail = (folder / "pytest.log").read_text(errors="replace").strip().splitlines()[-3:]
        problem = f"the worker for {board.name} wrote no results (exit {exit_code}): {' / '.join(tail)}"
    junit = folder / "junit.xml"
    # pytest exit 1 means some tests failed: that is a result, not a problem of the worker.
    if problem is None and exit_code not in (0, 1):
        problem = f"pytest exited {exit_code} on {board.name}"
    return BoardRun(board, exit_code, wall, tests, junit if junit.exists() else None, problem)


def run_bench(model: Path, board_map_path: Path, report_dir: Path, *, eval_path: Path | None = None,
              boards: Sequence[str] = (), suites: Sequence[str] = SUITES, samples: int = 32,
              timeout_s: float = BOARD_TIMEOUT_S, on_start: Callable[[str], None] | None = None) -> BenchRun:
    """Run `suites` on the boards of the map (all, or those named) in parallel; reports land in `report_dir`."""
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise HilError(f"unknown suite {unknown[0]!r}: choose from {', '.join(SUITES)}")
    if not model.is_file():
        raise HilError(f"model not found: {model}")
    if eval_path is not None and not eval_path.is_file():
        raise HilError(f"eval set not found: {eval_path}")
    board_map = load_board_map(board_map_path)
    chosen = [board_map.get(name) for name in boards] if boards else list(board_map.boards)
    report_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.monotonic()
    workers = []
    for board in chosen:
        folder = (report_dir / board.name).resolve()
        if not folder.is_relative_to(report_dir.resolve()):
            raise HilError(f"board {board.name!r} would write its reports outside {report_dir}")
        folder.mkdir(parents=True, exist_ok=True)
        for stale in ("results.json", "junit.xml"):
            (folder / stale).unlink(missing_ok=True)
        command = _command(board, model.resolve(), None if eval_path is None else eval_path.resolve(),
                           board_map.path.resolve(), folder, suites, samples)
        with (folder / "pytest.log").open("wb") as log:
            workers.append((board, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                    cwd=folder), folder, time.monotonic()))
        if on_start is not None:
            on_start(board.name)
    # One waiting thread per worker, so each board's wall time ends when its own worker does.
    with ThreadPoolExecutor(max_workers=max(1, len(workers))) as pool:
        runs = tuple(pool.map(lambda w: _collect(w[0], w[1], w[2], w[3], timeout_s), workers))
    run = BenchRun(model, eval_path, board_map.path, tuple(suites), time.monotonic() - started, runs)
    return write_reports(run, report_dir)
