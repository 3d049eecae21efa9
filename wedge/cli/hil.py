"""`wedge hil run MODEL.tflite --board-map bench.toml`: the built-in HIL suites on every board, with reports.

A thin click layer over `wedge.hil.runner.run_bench`; prints one line per board and where the reports are.
Boards are the map's, or labgrid places (`--labgrid HOST:PORT --place NAME`).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType

import click


@click.group()
def hil() -> None:
    """Hardware-in-the-loop bench: flash, accuracy vs host, latency and faults on real or virtual boards."""


@hil.command("run")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--board-map", "board_map", type=click.Path(dir_okay=False, path_type=Path),
              help="bench.toml listing the boards (port = \"virtual\" starts a virtual board).")
@click.option("--labgrid", "coordinator", metavar="HOST:PORT",
              help="labgrid coordinator of the places (default: the map's coordinator, then LG_COORDINATOR).")
@click.option("--place", "places", multiple=True, metavar="NAME",
              help="A labgrid place as a board, instead of a map (repeatable; run in parallel).")
@click.option("--profile", metavar="PROFILE",
              help="Board profile of the --place boards whose place has no 'profile' tag.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Private key the --place boards' bootloaders trust (images are signed with it).")
@click.option("--eval", "eval_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Eval set (.npz with the model input and optional labels) for the accuracy suite.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("hil-report"),
              show_default=True, help="Folder for report.json, junit.xml and report.html.")
@click.option("--bench-board", "boards", multiple=True, metavar="NAME",
              help="Only these boards of the map, by their entry names (repeatable; --board is a profile name).")
@click.option("--suite", "suites", multiple=True, metavar="NAME",
              help="Only these suites: flash, accuracy, latency, faults, ble (repeatable; default all).")
@click.option("--samples", type=click.IntRange(min=1), default=32, show_default=True,
              help="Eval samples to run on each device.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Class names of the model's output, one a line, for the confusion matrix (default: the model's "
                   "metadata, else class indices).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the summary.")
def run(model: Path, board_map: Path | None, coordinator: str | None, places: tuple[str, ...], profile: str | None,
        key_path: Path | None, eval_path: Path | None, report_dir: Path, boards: tuple[str, ...],
        suites: tuple[str, ...], samples: int, labels_path: Path | None, as_json: bool) -> None:
    """Run the HIL suites for MODEL on the boards of a map (or labgrid places), one worker per board in parallel."""
    from wedge.hil.runner import SUITES, LabOptions, run_bench
    from wedge.quantize.labels import read_labels_file

    def started(name: str) -> None:
        if not as_json:
            click.echo(f"{name}: running", err=True)

    def lab_said(message: str) -> None:
        click.echo(message, err=True)

    # SIGTERM ends the run as Ctrl-C does: workers stopped, places released.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    lab = LabOptions(coordinator=coordinator, places=places, profile=profile, key=key_path)
    labels = None if labels_path is None else read_labels_file(labels_path)
    result = run_bench(model, board_map, report_dir, eval_path=eval_path, boards=boards,
                       suites=suites or SUITES, samples=samples, on_start=started, lab=lab, on_lab=lab_said,
                       labels=labels)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        for board in result.boards:
            counts = ", ".join(f"{n} {k}" for k, n in board.summary().items() if n)
            click.echo(f"{board.board.name} ({board.board.profile.name}): {counts or 'no tests'} in {board.wall_s:.1f} s")
            if board.problem:
                click.echo(f"  {board.problem}")
            for test in board.tests:
                if test["outcome"] in ("failed", "error"):
                    click.echo(f"  {test['outcome']}: {test.get('title') or test['name']}: {test['message']}")
        click.echo(f"reports: {result.files['html']} · {result.files['junit']} · {result.files['json']}")
    if not result.passed:
        raise SystemExit(1)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)
