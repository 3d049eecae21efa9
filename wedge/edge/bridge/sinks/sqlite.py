"""The SQLite sink (the default): WAL journal, one row per (device, seq), so a restart never duplicates a record.

Writes run on one worker thread; `resume_after` tells the daemon where each device resumes; `query_records`
reads rows back by device, time range or newest N (the MCP server's stream_query), `stored_records` all of them
(the HIL and the benchmarks check what arrived through it).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Final

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.stream_record import StreamRecord

SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS records (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t_device_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    model_id INTEGER,
    vals TEXT NOT NULL,
    detail TEXT NOT NULL,
    UNIQUE (device, seq)
)
"""
# A locked database (another writer) is waited for this long before the batch counts as failed and is retried.
BUSY_TIMEOUT_S: Final[float] = 5.0


class SqliteSink:
    """Records in an SQLite file; duplicates (same device and seq) are ignored by the unique key."""

    durable = True

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.name = f"sqlite:{path}"
        self._db: sqlite3.Connection | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sink")

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _open(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL syncs at checkpoints: a committed batch survives a crash of the bridge.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
            db.commit()
        except sqlite3.Error as exc:
            raise SinkError(f"cannot open {self.path} as an SQLite database: {exc}") from exc
        self._db = db

    async def open(self) -> None:
        await self._run(self._open)

    def _write(self, batch: Sequence[StreamRecord]) -> None:
        assert self._db is not None
        rows = [(r.device, r.seq, r.t_device_us, r.received_us, r.kind, r.model_id,
                 json.dumps(list(r.values)), json.dumps(r.detail, separators=(",", ":"))) for r in batch]
        try:
            with self._db:
                self._db.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: {exc}") from exc

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        await self._run(self._write, batch)

    def _resume_after(self, device: str) -> int | None:
        assert self._db is not None
        try:
            low, high, count = self._db.execute(
                "SELECT MIN(seq), MAX(seq), COUNT(*) FROM records WHERE device = ?", (device,)).fetchone()
            if count == 0:
                return None
            if high - low + 1 == count:
                return int(high)
            # A hole (records written out of order, then the bridge stopped): resume at its start, so the
            # device is asked for it again; rows already stored are ignored by the unique key.
            (end,) = self._db.execute(
                "SELECT MIN(seq) FROM records r WHERE device = ? AND NOT EXISTS "
                "(SELECT 1 FROM records WHERE device = r.device AND seq = r.seq + 1)", (device,)).fetchone()
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: {exc}") from exc
        return int(end)

    async def resume_after(self, device: str) -> int | None:
        return await self._run(self._resume_after, device)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def close(self) -> None:
        await self._run(self._close)
        self._worker.shutdown(wait=True)


def stored_records(path: Path, device: str | None = None) -> list[StreamRecord]:
    """The rows of `path` (of one device, or all), in (device, seq) order; SinkError if it cannot be read."""
    return query_records(path, device=device)


def query_records(path: Path, *, device: str | None = None, since_us: int | None = None,
                  until_us: int | None = None, last: int | None = None) -> list[StreamRecord]:
    """The rows of `path` received in [since_us, until_us) (host clock, microseconds since the epoch), of one
    device or all; `last` keeps only the newest N by receive time. In (device, seq) order; the database is opened
    read-only, so a running bridge keeps writing. SinkError if it cannot be read."""
    where: list[str] = []
    arguments: list[str | int] = []
    for clause, value in (("device = ?", device), ("received_us >= ?", since_us), ("received_us < ?", until_us)):
        if value is not None:
            where.append(clause)
            arguments.append(value)
    query = "SELECT device, seq, t_device_us, received_us, kind, model_id, vals, detail FROM records"
    if where:
        query += " WHERE " + " AND ".join(where)
    if last is not None:
        query = f"SELECT * FROM ({query} ORDER BY received_us DESC, seq DESC LIMIT ?)"
        arguments.append(last)
    try:
        with closing(sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute(query + " ORDER BY device, seq", arguments).fetchall()
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read records from {path}: {exc}") from exc
    return [StreamRecord(d, seq, t, received, kind, model_id, tuple(json.loads(vals)), json.loads(detail))
            for d, seq, t, received, kind, model_id, vals, detail in rows]
