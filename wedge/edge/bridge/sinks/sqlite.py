"""The SQLite sink (the default): WAL journal, one row per (device, epoch, seq), so a restart never duplicates
a record and a device that restarted its numbers never collides with its past. Each row carries its verdict
(`label`, `score`, `scores`), ISO 8601 times beside the microseconds, and the `models` table names each model id.

Writes run on one worker thread. `coverage` tells the daemon exactly which numbers of each epoch are stored, so
a restarted bridge asks the device only for the others; `lost` rows record what a device no longer had, so a
gap check (`gap_check`) tells a record never fetched from one that is gone. A database of an earlier layout
(schema 1: no epoch; schema 2: no verdict, ISO times or models) is migrated in place, in one transaction, when
the sink opens it: its rows keep their device, epoch (0 for schema 1) and seq, gain ISO times, and have no
verdict (no model was known when they were stored). `query_records` reads rows back by device, time range or newest N (the MCP server's stream_query),
`stored_records` all of them (the HIL and the benchmarks check what arrived through it).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from wedge.edge.bridge.coverage import Coverage, EpochCoverage, Range, complement, merge
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import LostRange, StreamRecord, iso_time
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.protocol.ble_model_info import ModelInfo

SCHEMA_VERSION: Final[int] = 3
RECORDS_TABLE: Final[str] = """
CREATE TABLE IF NOT EXISTS records (
    device TEXT NOT NULL,
    name TEXT,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    t_device_us INTEGER NOT NULL,
    t_device TEXT NOT NULL,
    received_us INTEGER NOT NULL,
    received TEXT NOT NULL,
    kind TEXT NOT NULL,
    model_id INTEGER,
    label TEXT,
    score REAL,
    outputs TEXT NOT NULL,
    scores TEXT,
    backfill INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL,
    UNIQUE (device, epoch, seq)
)
"""
# Time-range queries (a dashboard's last hour, `query_records`) and a device's own timeline.
RECORDS_INDEXES: Final[tuple[str, ...]] = (
    "CREATE INDEX IF NOT EXISTS records_by_received ON records (received_us)",
    "CREATE INDEX IF NOT EXISTS records_by_device_time ON records (device, t_device_us)",
)
LOST_TABLE: Final[str] = """
CREATE TABLE IF NOT EXISTS lost (
    device TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,
    noted_us INTEGER NOT NULL,
    PRIMARY KEY (device, epoch, first_seq)
)
"""
MODELS_TABLE: Final[str] = """
CREATE TABLE IF NOT EXISTS models (
    model_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    labels TEXT NOT NULL,
    unit TEXT,
    first_seen_us INTEGER NOT NULL,
    first_seen TEXT NOT NULL
)
"""
_COLUMNS: Final[str] = ("device, name, epoch, seq, t_device_us, t_device, received_us, received, kind, model_id, "
                        "label, score, outputs, scores, backfill, detail")
# ISO 8601 UTC to the millisecond from integer microseconds, as `stream_record.iso_time` writes it.
_ISO_SQL: Final[str] = ("strftime('%Y-%m-%dT%H:%M:%S', {us} / 1000000, 'unixepoch') || '.' || "
                        "printf('%03d', ({us} / 1000) % 1000) || 'Z'")
# Old rows: their values keep their meaning, the raw tensors move to `tensors`, no verdict (no model was known).
_DETAIL_SQL: Final[str] = ("CASE WHEN kind = 'wedge' AND json_valid(detail) AND json_type(detail, '$.outputs') "
                           "IS NOT NULL THEN json_remove(json_set(detail, '$.tensors', "
                           "json(json_extract(detail, '$.outputs'))), '$.outputs') ELSE detail END")
_OLD_ROWS: Final[str] = (f"device, NULL, {{epoch}}, seq, t_device_us, {_ISO_SQL.format(us='t_device_us')}, "
                         f"received_us, {_ISO_SQL.format(us='received_us')}, kind, model_id, NULL, NULL, vals, "
                         f"NULL, 0, {_DETAIL_SQL}")
# Runs of consecutive numbers ("gaps and islands"): within one epoch, seq - row number is constant along a run.
_ISLANDS: Final[str] = """
SELECT MIN(seq), MAX(seq) + 1 FROM (
    SELECT seq, seq - ROW_NUMBER() OVER (ORDER BY seq) AS run FROM records
    WHERE device = ? AND epoch = ? AND seq >= ? AND seq < ?
) GROUP BY run ORDER BY 1
"""
# How many of a device's last stored rows say which epoch it was in most recently.
RECENT_ROWS: Final[int] = 2000
# A locked database (another writer) is waited for this long before the batch counts as failed and is retried.
BUSY_TIMEOUT_S: Final[float] = 5.0

T = TypeVar("T")


def _schema_version(db: sqlite3.Connection) -> int:
    """3 for this layout, 2 for (device, epoch, seq) without verdicts, 1 for the epoch-less one, 0 for an empty
    database."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version:
        return int(version)
    columns = [row[1] for row in db.execute("PRAGMA table_info(records)")]
    if not columns:
        return 0
    if "label" in columns:
        return SCHEMA_VERSION
    return 2 if "epoch" in columns else 1


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the database to this layout in one transaction: all of it, or (on any failure) none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _schema_version(db)
        if version > SCHEMA_VERSION:
            raise SinkError(f"the database has schema {version}, newer than this build's {SCHEMA_VERSION}: "
                            "use a newer wedge")
        if version in (1, 2):
            # Schema 1 had no epoch (its rows are epoch 0), schema 2 no verdict, ISO times or models.
            db.execute("ALTER TABLE records RENAME TO records_old")
            db.execute(RECORDS_TABLE)
            rows = _OLD_ROWS.format(epoch="0" if version == 1 else "epoch")
            db.execute(f"INSERT INTO records ({_COLUMNS}) SELECT {rows} FROM records_old ORDER BY rowid")
            db.execute("DROP TABLE records_old")
        db.execute(RECORDS_TABLE)
        for index in RECORDS_INDEXES:
            db.execute(index)
        db.execute(LOST_TABLE)
        db.execute(MODELS_TABLE)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _row(r: StreamRecord) -> tuple[Any, ...]:
    return (r.device, r.name, r.epoch, r.seq, r.t_device_us, iso_time(r.t_device_us), r.received_us,
            iso_time(r.received_us), r.kind, r.model_id, r.label, r.score, json.dumps(list(r.values)),
            None if r.scores is None else json.dumps(list(r.scores)), int(r.backfill),
            json.dumps(r.detail, separators=(",", ":")))


def _model_row(model: ModelInfo, seen_us: int) -> tuple[Any, ...]:
    return (model.model_id, model.name, model.version, json.dumps(list(model.labels), ensure_ascii=False),
            model.unit, seen_us, iso_time(seen_us))


def transaction(db: sqlite3.Connection, what: str, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
    """Each statement over its rows, all in one transaction (of a connection in autocommit mode); SinkError
    naming `what` when SQLite fails, with nothing written."""
    try:
        db.execute("BEGIN")
        try:
            for sql, rows in statements:
                db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise SinkError(f"{what}: {exc}") from exc


class SqliteSink:
    """Records in an SQLite file; duplicates (same device, epoch and seq) are ignored by the unique key."""

    durable = True

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.name = f"sqlite:{path}"
        self._db: sqlite3.Connection | None = None
        self._models: dict[int, ModelInfo] = {}  # written to the models table by this sink
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sink")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _open(self) -> None:
        try:
            # Autocommit mode: every transaction below is explicit, so the migration's DDL is inside one too.
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, check_same_thread=False,
                                 isolation_level=None)
        except sqlite3.Error as exc:
            raise SinkError(f"cannot open {self.path} as an SQLite database: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL syncs at checkpoints: a committed batch survives a crash of the bridge.
            db.execute("PRAGMA synchronous=NORMAL")
            _migrate(db)
        except (sqlite3.Error, SinkError) as exc:
            db.close()
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"cannot open {self.path} as an SQLite database: {exc}") from exc
        self._db = db

    async def open(self) -> None:
        await self._run(self._open)

    def _transaction(self, *statements: tuple[str, list[tuple[Any, ...]]]) -> None:
        """Each (sql, rows) of `statements`, all in one transaction."""
        assert self._db is not None
        transaction(self._db, str(self.path), statements)

    def _write(self, batch: Sequence[StreamRecord]) -> None:
        rows = [_row(r) for r in batch]
        models: dict[int, tuple[Any, ...]] = {}
        for r in batch:
            if r.model is not None and self._models.get(r.model.model_id) != r.model and r.model.model_id not in models:
                models[r.model.model_id] = _model_row(r.model, r.received_us)
        statements = [(f"INSERT OR IGNORE INTO records ({_COLUMNS}) VALUES ({', '.join('?' * 16)})", rows)]
        if models:
            # A model seen again keeps its first sighting; a changed description (a new manifest) replaces the rest.
            statements.append(("INSERT INTO models (model_id, name, version, labels, unit, first_seen_us, first_seen) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET name = excluded.name, "
                               "version = excluded.version, labels = excluded.labels, unit = excluded.unit",
                               list(models.values())))
        self._transaction(*statements)
        self._models.update({r.model.model_id: r.model for r in batch if r.model is not None})

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        await self._run(self._write, batch)

    def _note_lost(self, ranges: Sequence[LostRange]) -> None:
        rows = [(r.device, r.epoch, r.first_seq, r.end_seq, r.noted_us) for r in ranges]
        self._transaction(("INSERT OR REPLACE INTO lost (device, epoch, first_seq, end_seq, noted_us) "
                           "VALUES (?, ?, ?, ?, ?)", rows))

    async def note_lost(self, ranges: Sequence[LostRange]) -> None:
        await self._run(self._note_lost, ranges)

    def _coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        assert self._db is not None
        db = self._db
        try:
            known = db.execute("SELECT EXISTS (SELECT 1 FROM records WHERE device = ?) OR "
                               "EXISTS (SELECT 1 FROM lost WHERE device = ?)", (device, device)).fetchone()[0]
            # The device's newest record (device clock) among its last stored ones: an old epoch's tail may be
            # stored after the next epoch's first records, so the very last row does not say.
            last = db.execute("SELECT epoch FROM (SELECT epoch, t_device_us FROM records NOT INDEXED WHERE device = ? "
                              f"ORDER BY rowid DESC LIMIT {RECENT_ROWS}) ORDER BY t_device_us DESC LIMIT 1",
                              (device,)).fetchone()
            epochs = {}
            for window in windows:
                epochs[window.epoch] = self._epoch_coverage(device, window)
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: {exc}") from exc
        return Coverage(bool(known), None if last is None else int(last[0]), epochs)

    def _epoch_coverage(self, device: str, window: EpochSpan) -> EpochCoverage:
        assert self._db is not None
        db = self._db
        key = (device, window.epoch)
        first, end = window.first_seq, window.end_seq
        islands = db.execute(_ISLANDS, (*key, first, end)).fetchall()
        lost = db.execute("SELECT first_seq, end_seq FROM lost WHERE device = ? AND epoch = ? AND end_seq > ? "
                          "AND first_seq < ?", (*key, first, end)).fetchall()
        covered = merge([(a, b) for a, b in islands] + [(max(a, first), min(b, end)) for a, b in lost])
        (stored_below,) = db.execute("SELECT MAX(seq) + 1 FROM records WHERE device = ? AND epoch = ? AND seq < ?",
                                     (*key, first)).fetchone()
        (lost_below,) = db.execute("SELECT MIN(MAX(end_seq), ?) FROM lost WHERE device = ? AND epoch = ? AND "
                                   "first_seq < ?", (first, *key, first)).fetchone()
        below = [v for v in (stored_below, lost_below) if v is not None]
        (stored_newest,) = db.execute("SELECT MAX(seq) + 1 FROM records WHERE device = ? AND epoch = ?",
                                      key).fetchone()
        (lost_newest,) = db.execute("SELECT MAX(end_seq) FROM lost WHERE device = ? AND epoch = ?", key).fetchone()
        newest = [v for v in (stored_newest, lost_newest) if v is not None]
        return EpochCoverage(tuple(covered), max(below) if below else None, max(newest) if newest else None)

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return await self._run(self._coverage, device, windows)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def close(self) -> None:
        await self._run(self._close)
        self._worker.shutdown(wait=True)


def read_only(path: Path, what: str) -> sqlite3.Connection:
    """The database opened read-only (a running bridge keeps writing); SinkError unless it has this layout."""
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        version = _schema_version(db)
    except sqlite3.Error as exc:
        raise SinkError(f"{what} {path}: {exc}") from exc
    if version != SCHEMA_VERSION:
        db.close()
        if version == 0:
            raise SinkError(f"{what} {path}: no such table: records (not a bridge's database)")
        raise SinkError(f"{what} {path}: it has schema {version}; open it once with the bridge (`wedge bridge "
                        f"--sink sqlite:{path}`) to migrate it to schema {SCHEMA_VERSION}")
    return db


def stored_records(path: Path, device: str | None = None) -> list[StreamRecord]:
    """The rows of `path` (of one device, or all), in (device, epoch, seq) order; SinkError if it cannot be read."""
    return query_records(path, device=device)


def query_records(path: Path, *, device: str | None = None, since_us: int | None = None,
                  until_us: int | None = None, last: int | None = None, epoch: int | None = None,
                  first_seq: int | None = None, end_seq: int | None = None) -> list[StreamRecord]:
    """The rows of `path` received in [since_us, until_us) (host clock, microseconds since the epoch), of one
    device or all (of one epoch, numbers in [first_seq, end_seq)); `last` keeps only the newest N by receive time.
    In (device, epoch, seq) order; the database is opened read-only, so a running bridge keeps writing. SinkError
    if it cannot be read."""
    where: list[str] = []
    arguments: list[str | int] = []
    for clause, value in (("device = ?", device), ("received_us >= ?", since_us), ("received_us < ?", until_us),
                          ("epoch = ?", epoch), ("seq >= ?", first_seq), ("seq < ?", end_seq)):
        if value is not None:
            where.append(clause)
            arguments.append(value)
    query = f"SELECT {_COLUMNS} FROM records"
    if where:
        query += " WHERE " + " AND ".join(where)
    if last is not None:
        query = f"SELECT * FROM ({query} ORDER BY received_us DESC, epoch DESC, seq DESC LIMIT ?)"
        arguments.append(last)
    try:
        with closing(read_only(path, "cannot read records from")) as db:
            rows = db.execute(query + " ORDER BY device, epoch, seq", arguments).fetchall()
            models = _models(db)
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read records from {path}: {exc}") from exc
    return [StreamRecord(d, epoch, seq, t, received, kind, model_id, tuple(json.loads(outputs)), json.loads(detail),
                         bool(backfill), name, label, score, None if scores is None else tuple(json.loads(scores)),
                         models.get(model_id))
            for d, name, epoch, seq, t, _, received, _, kind, model_id, label, score, outputs, scores, backfill, detail
            in rows]


def _models(db: sqlite3.Connection) -> dict[int, ModelInfo]:
    rows = db.execute("SELECT model_id, name, version, labels, unit FROM models").fetchall()
    return {model_id: ModelInfo(model_id, name, version, tuple(json.loads(labels)), unit)
            for model_id, name, version, labels, unit in rows}


def stored_models(path: Path) -> list[ModelInfo]:
    """The models a database names (its `models` table), by model id; SinkError if it cannot be read."""
    try:
        with closing(read_only(path, "cannot read models from")) as db:
            return [m for _, m in sorted(_models(db).items())]
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read models from {path}: {exc}") from exc


def stored_ranges(path: Path) -> dict[tuple[str, int], list[Range]]:
    """Per (device, epoch), the runs of consecutive numbers stored (what an outbox has to forward); read-only."""
    try:
        with closing(read_only(path, "cannot read records from")) as db:
            rows = db.execute("SELECT device, epoch, MIN(seq), MAX(seq) + 1 FROM (SELECT device, epoch, seq, seq - "
                              "ROW_NUMBER() OVER (PARTITION BY device, epoch ORDER BY seq) AS run FROM records) "
                              "GROUP BY device, epoch, run ORDER BY device, epoch, 3").fetchall()
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read records from {path}: {exc}") from exc
    ranges: dict[tuple[str, int], list[Range]] = {}
    for device, epoch, first, end in rows:
        ranges.setdefault((device, epoch), []).append((first, end))
    return ranges


def query_lost(path: Path) -> list[LostRange]:
    """The recorded lost ranges of `path`, in (device, epoch, first_seq) order; read-only."""
    try:
        with closing(read_only(path, "cannot read lost ranges from")) as db:
            rows = db.execute("SELECT device, epoch, first_seq, end_seq, noted_us FROM lost "
                              "ORDER BY device, epoch, first_seq").fetchall()
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read lost ranges from {path}: {exc}") from exc
    return [LostRange(*row) for row in rows]


@dataclass(frozen=True)
class EpochGaps:
    """One (device, epoch) of a database: what is stored, what is missing and known lost, what is missing
    and not accounted for (`open`: not fetched yet, or a fault)."""

    device: str
    epoch: int
    stored: int
    first_seq: int
    end_seq: int                # one past the newest number stored or recorded lost
    lost: tuple[Range, ...]     # recorded as lost: the device produced them and no longer had them
    open: tuple[Range, ...]     # missing between first_seq and end_seq, and not recorded as lost

    @property
    def lost_records(self) -> int:
        return sum(b - a for a, b in self.lost)

    @property
    def open_records(self) -> int:
        return sum(b - a for a, b in self.open)

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "epoch": self.epoch, "stored": self.stored, "first_seq": self.first_seq,
                "end_seq": self.end_seq, "lost": [list(r) for r in self.lost], "open": [list(r) for r in self.open],
                "lost_records": self.lost_records, "open_records": self.open_records}


def gap_check(path: Path, device: str | None = None) -> list[EpochGaps]:
    """Every (device, epoch) of the database with its holes: recorded lost ones apart from unexplained ones.

    A new epoch is not a hole (each epoch is numbered from 0 on its own); an epoch whose first stored number is
    above 0 was first seen with its oldest records already gone from the device (only a `lost` row says they
    were lost; without one, the bridge was not following the device yet).
    """
    where, arguments = ("WHERE device = ?", (device,)) if device is not None else ("", ())
    try:
        with closing(read_only(path, "cannot check")) as db:
            groups = db.execute(f"SELECT device, epoch, COUNT(*), MIN(seq), MAX(seq) + 1 FROM records {where} "
                                "GROUP BY device, epoch ORDER BY device, epoch", arguments).fetchall()
            lost_rows = db.execute(f"SELECT device, epoch, first_seq, end_seq FROM lost {where} "
                                   "ORDER BY device, epoch, first_seq", arguments).fetchall()
            lost: dict[tuple[str, int], list[Range]] = {}
            for d, e, a, b in lost_rows:
                lost.setdefault((d, e), []).append((a, b))
            report = []
            for d, e, count, low, high in groups:
                recorded = merge(lost.pop((d, e), []))
                start = min([low] + [a for a, _ in recorded])
                end = max([high] + [b for _, b in recorded])
                islands = [(a, b) for a, b in db.execute(_ISLANDS, (d, e, start, end))]
                missing = complement(islands + recorded, start, end)
                report.append(EpochGaps(d, e, count, start, end, tuple(recorded), tuple(missing)))
            for (d, e), recorded in sorted(lost.items()):
                ranges = merge(recorded)
                report.append(EpochGaps(d, e, 0, ranges[0][0], ranges[-1][1], tuple(ranges), ()))
    except sqlite3.Error as exc:
        raise SinkError(f"cannot check {path}: {exc}") from exc
    return sorted(report, key=lambda g: (g.device, g.epoch))
