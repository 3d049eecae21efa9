"""`wedge hil run`: the built-in suites on every board of a map, one pytest worker process per board, in parallel.

Each worker writes its JUnit XML and JSON record under `<report>/<board>/`; the runner merges them into
`report.json`, `junit.xml` and `report.html`. A board that fails to start fails its own tests, not the others.
The labgrid places among the boards are acquired before the workers start and released when they end, also
when the run is interrupted (the workers are stopped first).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wedge.hil.board_map import BenchBoard, BoardMap, load_board_map
from wedge.hil.errors import HilError
from wedge.hil.labgrid import PROFILE_TAG, HeldPlaces, LabgridError, coordinator_address, hold_places
from wedge.hil.report import write_reports
from wedge.hil.results import BenchRun, BoardRun
from wedge.quantize.labels import model_labels

SUITES_DIR: Final[Path] = Path(__file__).resolve().parent / "suites"
SUITES: Final[tuple[str, ...]] = ("flash", "accuracy", "latency", "faults", "ble")
SMOKE_SUITES: Final[tuple[str, ...]] = ("flash", "accuracy", "latency")
BOARD_TIMEOUT_S: Final[float] = 900.0
# An interrupted run stops its workers with SIGINT (pytest then tears its fixtures down: boards stop, places
# go back), and kills the ones still there after this long.
WORKER_STOP_TIMEOUT_S: Final[float] = 20.0
PLACE_MAP_NAME: Final[str] = "labgrid-places.toml"


@dataclass(frozen=True)
class LabOptions:
    """labgrid for a run: the coordinator (else the map's, then LG_COORDINATOR), and places given without a map."""

    coordinator: str | None = None
    places: tuple[str, ...] = ()
    profile: str | None = None  # for places without a `profile` tag
    key: Path | None = None  # the key the places' boards trust


def _command(board: BenchBoard, model: Path, eval_path: Path | None, board_map: Path, folder: Path,
             suites: Sequence[str], samples: int, coordinator: str) -> list[str]:
    files = [str(SUITES_DIR / f"test_{name}.py") for name in suites]
    command = [sys.executable, "-m", "pytest", "-p", "wedge.hil.plugin", *files, "--board-map", str(board_map),
               "--bench-board", board.name, "--model", str(model), "--hil-samples", str(samples),
               "--hil-json", str(folder / "results.json"), "--junitxml", str(folder / "junit.xml"),
               "-o", "junit_family=xunit1", "-o", f"junit_suite_name={board.name}", "-p", "no:cacheprovider",
               "--rootdir", str(folder), "-q", "--no-header", "-rfE"]
    if eval_path is not None:
        command += ["--eval", str(eval_path)]
    if board.place is not None:
        command += ["--labgrid", coordinator]
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


def _stop_workers(workers: Sequence[tuple[BenchBoard, subprocess.Popen[bytes], Path, float]]) -> None:
    for _, process, _, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for _, process, _, _ in workers:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _place_map(report_dir: Path, lab: LabOptions, held: HeldPlaces) -> Path:
    """A bench.toml of the places given on the command line (in the report folder: it is the run's map)."""
    lines = [f"coordinator = {json.dumps(held.coordinator)}\n"]
    for name in lab.places:
        profile = lab.profile or held.tags.get(name, {}).get(PROFILE_TAG)
        if not profile:
            raise LabgridError(f"place {name} has no {PROFILE_TAG} tag: give --profile, or tag it once with "
                               f"labgrid-client -p {name} set-tags {PROFILE_TAG}=BOARD-PROFILE")
        lines.append(f"\n[boards.{json.dumps(name)}]\nplace = {json.dumps('labgrid:' + name)}\n"
                     f"profile = {json.dumps(profile)}\n")
        if lab.key is not None:
            lines.append(f"key = {json.dumps(str(lab.key.resolve()))}\n")
    path = report_dir / PLACE_MAP_NAME
    path.write_text("".join(lines))
    return path


def run_bench(model: Path, board_map_path: Path | None, report_dir: Path, *, eval_path: Path | None = None,
              boards: Sequence[str] = (), suites: Sequence[str] = SUITES, samples: int = 32,
              timeout_s: float = BOARD_TIMEOUT_S, on_start: Callable[[str], None] | None = None,
              lab: LabOptions = LabOptions(), on_lab: Callable[[str], None] | None = None,
              labels: Sequence[str] | None = None) -> BenchRun:
    """Run `suites` on the boards of the map (all, or those named) in parallel; reports land in `report_dir`.

    Boards come from the map, or are the labgrid places of `lab.places`; places are held for the run.
    `labels` name the model's classes in the reports (default: the model file's own metadata, if any).
    """
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise HilError(f"unknown suite {unknown[0]!r}: choose from {', '.join(SUITES)}")
    if not model.is_file():
        raise HilError(f"model not found: {model}")
    if eval_path is not None and not eval_path.is_file():
        raise HilError(f"eval set not found: {eval_path}")
    if lab.places and board_map_path is not None:
        raise HilError("give the boards as --board-map or as --place, not both (a map can list places)")
    if lab.key is not None and not lab.key.is_file():
        raise HilError(f"key not found: {lab.key}")
    names = tuple(labels) if labels is not None else model_labels(model)
    if lab.places:
        if boards:
            raise HilError("--board picks boards of a map: with --place, name only the places you want")
        coordinator = coordinator_address(lab.coordinator)
        report_dir.mkdir(parents=True, exist_ok=True)
        with hold_places(coordinator, lab.places, on_lab) as held:
            board_map = load_board_map(_place_map(report_dir, lab, held))
            return _run(model, eval_path, board_map, list(board_map.boards), report_dir, suites, samples,
                        timeout_s, coordinator, on_start, names)
    if board_map_path is None:
        raise HilError("no boards: give --board-map bench.toml, or --labgrid COORDINATOR --place NAME")
    board_map = load_board_map(board_map_path)
    chosen = [board_map.get(name) for name in boards] if boards else list(board_map.boards)
    coordinator = coordinator_address(lab.coordinator, board_map.coordinator)
    report_dir.mkdir(parents=True, exist_ok=True)
    with hold_places(coordinator, [b.place for b in chosen if b.place is not None], on_lab):
        return _run(model, eval_path, board_map, chosen, report_dir, suites, samples, timeout_s, coordinator,
                    on_start, names)


def _run(model: Path, eval_path: Path | None, board_map: BoardMap, chosen: Sequence[BenchBoard], report_dir: Path,
         suites: Sequence[str], samples: int, timeout_s: float, coordinator: str,
         on_start: Callable[[str], None] | None, labels: tuple[str, ...] = ()) -> BenchRun:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.monotonic()
    workers: list[tuple[BenchBoard, subprocess.Popen[bytes], Path, float]] = []
    # One waiting thread per worker, so each board's wall time ends when its own worker does.
    pool = ThreadPoolExecutor(max_workers=max(1, len(chosen)))
    try:
        futures = []
        for board in chosen:
            folder = (report_dir / board.name).resolve()
            if not folder.is_relative_to(report_dir.resolve()):
                raise HilError(f"board {board.name!r} would write its reports outside {report_dir}")
            folder.mkdir(parents=True, exist_ok=True)
            for stale in ("results.json", "junit.xml"):
                (folder / stale).unlink(missing_ok=True)
            command = _command(board, model.resolve(), None if eval_path is None else eval_path.resolve(),
                               board_map.path.resolve(), folder, suites, samples, coordinator)
            with (folder / "pytest.log").open("wb") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
            workers.append((board, process, folder, time.monotonic()))
            futures.append(pool.submit(_collect, board, process, folder, workers[-1][3], timeout_s))
            if on_start is not None:
                on_start(board.name)
        runs = tuple(future.result() for future in futures)
    except BaseException:  # an error, Ctrl-C or SIGTERM: no worker outlives the run (nor holds its place)
        _stop_workers(workers)
        raise
    finally:
        pool.shutdown(wait=True)
    run = BenchRun(model, eval_path, board_map.path, tuple(suites), time.monotonic() - started, runs, labels=labels)
    return write_reports(run, report_dir)
