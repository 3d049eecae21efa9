"""`wedge export`: a bridge's SQLite database as one flat table, CSV or Parquet, for pandas, Grafana and friends.

One row per record, in (device, epoch, seq) order, with its model's name, version and unit joined in, and one
`p_<label>` column per class of the models it holds (the class probabilities). Rows are read and written in
batches, so a large database never sits in memory; the file appears only once it is whole.

Parquet is written with pyarrow (the `export` extra): the reference implementation, needing no pandas, with real
list and timestamp columns. CSV needs nothing beyond the standard library.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.sqlite import read_only

FORMATS: Final[tuple[str, ...]] = ("csv", "parquet")
BATCH_ROWS: Final[int] = 20_000
BASE_COLUMNS: Final[tuple[str, ...]] = (
    "device", "name", "epoch", "seq", "t_device", "t_device_us", "received", "received_us", "kind", "model_id",
    "model", "model_version", "label", "score", "unit", "backfill", "outputs",
)
_SELECT: Final[str] = (
    "SELECT r.device, r.name, r.epoch, r.seq, r.t_device, r.t_device_us, r.received, r.received_us, r.kind, "
    "r.model_id, m.name, m.version, r.label, r.score, m.unit, r.backfill, r.outputs, r.scores, m.labels "
    "FROM records r LEFT JOIN models m ON m.model_id = r.model_id {where} ORDER BY r.device, r.epoch, r.seq"
)


@dataclass(frozen=True)
class ExportResult:
    path: Path | None      # None: written to stdout
    format: str
    rows: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": None if self.path is None else str(self.path), "format": self.format, "rows": self.rows,
                "columns": list(self.columns)}


def _class_columns(db: sqlite3.Connection, where: str, arguments: tuple[Any, ...]) -> list[str]:
    """Every label of the models the selected records name, in first-seen order, as `p_<label>` columns."""
    labels: dict[str, None] = {}
    query = (f"SELECT m.labels FROM models m WHERE m.model_id IN (SELECT DISTINCT model_id FROM records r {where}) "
             "ORDER BY m.first_seen_us")
    for (text,) in db.execute(query, arguments):
        labels.update(dict.fromkeys(json.loads(text)))
    return [f"p_{label}" for label in labels]


def _rows(db: sqlite3.Connection, where: str, arguments: tuple[Any, ...],
          class_columns: list[str]) -> Iterator[list[dict[str, Any]]]:
    cursor = db.execute(_SELECT.format(where=where), arguments)
    while batch := cursor.fetchmany(BATCH_ROWS):
        out = []
        for row in batch:
            *base, outputs, scores, labels = row
            record = dict(zip(BASE_COLUMNS, base, strict=False))
            record["backfill"] = bool(record["backfill"])
            record["outputs"] = json.loads(outputs)
            probabilities = dict.fromkeys(class_columns)
            if scores is not None and labels is not None:
                probabilities.update({f"p_{label}": p for label, p in zip(json.loads(labels), json.loads(scores),
                                                                          strict=False)})
            out.append(record | probabilities)
        yield out


def _write_csv(out: TextIO, columns: list[str], batches: Iterator[list[dict[str, Any]]],
               advance: Callable[[int], None]) -> int:
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    count = 0
    for batch in batches:
        for record in batch:
            record["outputs"] = json.dumps(record["outputs"])
            writer.writerow(record)
        count += len(batch)
        advance(len(batch))
    return count


def _arrow_schema(class_columns: list[str]) -> Any:
    import pyarrow as pa

    fields = [("device", pa.string()), ("name", pa.string()), ("epoch", pa.int64()), ("seq", pa.int64()),
              ("t_device", pa.timestamp("us", tz="UTC")), ("t_device_us", pa.int64()),
              ("received", pa.timestamp("us", tz="UTC")), ("received_us", pa.int64()), ("kind", pa.string()),
              ("model_id", pa.int64()), ("model", pa.string()), ("model_version", pa.string()),
              ("label", pa.string()), ("score", pa.float64()), ("unit", pa.string()), ("backfill", pa.bool_()),
              ("outputs", pa.list_(pa.float64()))]
    return pa.schema(fields + [(c, pa.float64()) for c in class_columns])


def _write_parquet(path: Path, class_columns: list[str],
                   batches: Iterator[list[dict[str, Any]]], advance: Callable[[int], None]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SinkError("Parquet export needs pyarrow: pip install 'wedge[export]' (or pip install pyarrow)") from None
    schema = _arrow_schema(class_columns)
    count = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for batch in batches:
            for record in batch:
                # Exact timestamps from the integers (the ISO text columns stop at the millisecond).
                record["t_device"], record["received"] = record["t_device_us"], record["received_us"]
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
            advance(len(batch))
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def export_records(db_path: Path, out: Path | None, fmt: str, *, device: str | None = None,
                   on_total: Callable[[int], Callable[[int], None]] | None = None) -> ExportResult:
    """Write the records of `db_path` (of one device, or all) to `out` as `fmt` (csv or parquet); `out` None
    writes CSV to stdout. `on_total(rows)` is called once with the row count and returns a progress callback.
    SinkError for an unreadable database, an unknown format, or an output that cannot be written."""
    if fmt not in FORMATS:
        raise SinkError(f"unknown export format {fmt!r}: expected {' or '.join(FORMATS)}")
    if out is None and fmt != "csv":
        raise SinkError("Parquet is binary: give an output file, not stdout")
    if not Path(db_path).is_file():
        raise SinkError(f"{db_path}: no such database")
    where, arguments = ("WHERE r.device = ?", (device,)) if device is not None else ("", ())
    try:
        with closing(read_only(db_path, "cannot export")) as db:
            (total,) = db.execute(f"SELECT COUNT(*) FROM records r {where}", arguments).fetchone()
            advance = on_total(total) if on_total is not None else (lambda _n: None)
            class_columns = _class_columns(db, where, arguments)
            columns = [*BASE_COLUMNS, *class_columns]
            batches = _rows(db, where, arguments, class_columns)
            if out is None:
                rows = _write_csv(sys.stdout, columns, batches, advance)
                return ExportResult(None, fmt, rows, tuple(columns))
            rows = _atomic(out, lambda tmp: _write_parquet(tmp, class_columns, batches, advance)
                           if fmt == "parquet" else _csv_file(tmp, columns, batches, advance))
    except sqlite3.Error as exc:
        raise SinkError(f"cannot export {db_path}: {exc}") from exc
    return ExportResult(out, fmt, rows, tuple(columns))


def _csv_file(path: Path, columns: list[str], batches: Iterator[list[dict[str, Any]]],
              advance: Callable[[int], None]) -> int:
    with path.open("w", encoding="utf-8", newline="") as handle:
        return _write_csv(handle, columns, batches, advance)


def _atomic(out: Path, write: Callable[[Path], int]) -> int:
    """Write through a temporary file beside `out`, renamed over it only when whole."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise SinkError(f"cannot write {out}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file private (0600); the export is an ordinary file, as the umask says.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        rows = write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise SinkError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return rows
