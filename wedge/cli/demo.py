"""`wedge demo`: the whole product on one laptop — quantize a bundled sample, flash a virtual ring, bench it.

A thin click layer over `wedge.demo.run_demo`, showing each step with rich and a summary at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from wedge.boards import DEFAULT_BOARD
from wedge.errors import WedgeError
from wedge.samples import DEFAULT_SAMPLE


def _run(workdir: Path, observer: Any, sample: str, board_name: str, clean: bool) -> Any:
    from wedge.demo import run_demo

    try:
        return run_demo(workdir, observer, sample=sample, board_name=board_name)
    finally:
        if clean:
            shutil.rmtree(workdir, ignore_errors=True)


@click.command()
@click.option("--sample", default=DEFAULT_SAMPLE, show_default=True, help="Bundled sample: ppg_quality or digits.")
@click.option("--board", "board_name", default=DEFAULT_BOARD, show_default=True, help="Board profile to emulate.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the model, its report page, the key, the signed image and the HIL reports "
                   "(default: a new folder under the temporary directory, kept and named at the end).")
@click.option("--clean", is_flag=True, help="Remove the work folder when the demo ends (reports included).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(sample: str, board_name: str, workdir: Path | None, clean: bool, as_json: bool) -> None:
    """Quantize a sample model, sign and flash it to a virtual ring, and run the HIL smoke suite on it."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)

    class Observer:
        def __init__(self) -> None:
            self.status = None

        def step(self, name: str) -> None:
            self.status = console.status(f"[bold]{name}[/]…")
            self.status.start()

        def done(self, name: str, detail: str) -> None:
            if self.status is not None:
                self.status.stop()
            console.print(f"[green]✓[/] [bold]{name}[/]: {detail}")

    observer = Observer()
    # A short path by default: the virtual ring's control socket must fit a Unix socket path.
    folder = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="wedge-demo-"))
    try:
        summary = _run(folder, observer, sample, board_name, clean)
    except WedgeError as exc:
        if as_json:  # --json always answers on stdout, a failure included
            click.echo(json.dumps({"passed": False, "error": str(exc)}, indent=2))
        raise
    finally:
        if observer.status is not None:
            observer.status.stop()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        board = summary.hil["boards"][0]
        metrics = board["metrics"]
        table = Table(title=f"wedge demo: {summary.sample} on a virtual {summary.board}", show_header=False)
        accuracy = metrics.get("accuracy", {})
        latency = metrics.get("latency", {})
        rows = [
            ("HIL tests", ", ".join(f"{n} {k}" for k, n in board["summary"].items() if n)),
            ("device accuracy", f"{accuracy['device_accuracy']:.3f}" if accuracy.get("device_accuracy") is not None else "-"),
            ("top-1 agreement with host", f"{accuracy['top1_agreement']:.3f}" if accuracy else "-"),
            ("bit-exact with TFLM on host", str(metrics.get("bit_exact_vs_host_tflm", {}).get("exact_samples", "-"))),
            ("latency (cycle model)", f"{latency['median_us']:.0f} us" if latency else "-"),
            ("rollback", "reverted" if metrics.get("rollback", {}).get("rolled_back") else "-"),
            ("BLE stream", (f"{summary.stream['received_records']} records, {summary.stream['lost_records']} lost, "
                           f"{summary.stream['reconnects']} reconnect(s)")),
            ("the ring's model said", ", ".join(f"{label} {n}" for label, n in summary.stream.get("labels", {}).items())
             or "-"),
            ("wall time", f"{summary.wall_s:.1f} s"),
        ]
        for key, value in rows:
            table.add_row(key, value)
        Console().print(table)
        if clean:
            console.print(f"{folder} removed (--clean)")
        else:
            hil_page = summary.workdir / "hil-report" / "report.html"
            console.print(f"kept in {summary.workdir}: model/ (the int8 model, its .img and report.html), "
                          f"{hil_page.relative_to(summary.workdir)}, ble/stream.db")
    if not summary.passed:
        raise SystemExit(1)
