"""query_records reads what the SQLite sink wrote: by device, by receive-time range, and the newest N."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.sqlite import SqliteSink, query_records, stored_records
from wedge.edge.bridge.stream_record import KIND_WEDGE, StreamRecord


def _record(device: str, seq: int, received_us: int) -> StreamRecord:
    return StreamRecord(device, 1, seq, seq * 1000, received_us, KIND_WEDGE, 1, (0.1 * seq, 1.0), {"outputs": []})


def _write(path: Path, records: list[StreamRecord]) -> None:
    async def run() -> None:
        sink = SqliteSink(path)
        await sink.open()
        await sink.write(records)
        await sink.close()

    asyncio.run(run())


def test_records_are_selected_by_device_time_range_and_newest_n(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    # ring-b's record 1 arrives last (a backfill): "newest" is by arrival, the order is by seq.
    written = [_record("ring-a", seq, 1_000 + 10 * seq) for seq in range(10)] + \
        [_record("ring-b", 0, 1_005), _record("ring-b", 1, 2_000)]
    _write(db, written)
    assert query_records(db) == stored_records(db) == sorted(written, key=lambda r: (r.device, r.seq))
    assert [r.seq for r in query_records(db, device="ring-a", since_us=1_030, until_us=1_060)] == [3, 4, 5]
    newest = query_records(db, last=3)
    assert [(r.device, r.seq) for r in newest] == [("ring-a", 8), ("ring-a", 9), ("ring-b", 1)]
    assert [r.seq for r in query_records(db, device="ring-b", last=1)] == [1]
    assert query_records(db, device="ring-c") == []


def test_a_missing_or_foreign_database_is_a_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="cannot read records"):
        query_records(tmp_path / "absent.db")
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(SinkError, match="no such table"):
        query_records(other)
