"""`wedge export stream.db --format csv|parquet`: a bridge's database as one flat table for pandas or Grafana.

A thin click layer over `wedge.edge.bridge.export.export_records`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from wedge.cli.progress import progress_bars
from wedge.edge.bridge.export import FORMATS, export_records


@click.command()
@click.argument("database", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv (standard library), or parquet (needs pyarrow: pip install 'wedge[export]').")
@click.option("-o", "--out", "out", metavar="FILE",
              help="File to write ('-': CSV on stdout). Default: the database's name with .csv or .parquet.")
@click.option("--device", metavar="ID", help="Only this device's records (its id, as the database keys it).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON (not with -o -: stdout is the CSV).")
def export(database: Path, fmt: str, out: str | None, device: str | None, as_json: bool) -> None:
    """Export the records of a bridge's SQLite database, one row each, with label, score and class probabilities."""
    if as_json and out == "-":
        raise click.UsageError("-o - writes the CSV on stdout: --json has no room there")
    target = None if out == "-" else Path(out) if out else database.with_suffix(f".{fmt}")
    with progress_bars(enabled=target is not None and not as_json and sys.stderr.isatty()) as bars:
        def on_total(total: int) -> Callable[[int], None]:
            return bars.stage(f"exporting {database.name}", total) if bars is not None else (lambda _n: None)

        result = export_records(database, target, fmt, device=device, on_total=on_total)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    elif target is not None:
        click.echo(f"{result.rows:,} records -> {target} ({fmt}, {len(result.columns)} columns)")
