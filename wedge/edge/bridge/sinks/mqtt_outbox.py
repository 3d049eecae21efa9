"""The MQTT sink's outbox state, in the bridge's SQLite database: which records (and lost ranges) one broker
destination has acknowledged, as ranges of sequence numbers per (device, epoch).

The records themselves stay in the SQLite sink's `records` table, read through its query functions; this module
owns its two tables only (`mqtt_acked`, `mqtt_acked_lost`) and never changes the schema version, so it stays out
of the way of the records table's own migrations. What to publish after a restart is what is stored minus what
was acknowledged. All methods block: the sink runs them on one worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from wedge.edge.bridge.coverage import Range, complement, merge
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sinks.sqlite import BUSY_TIMEOUT_S, query_lost, query_records, stored_ranges, transaction
from wedge.edge.bridge.stream_record import LostRange, StreamRecord

ACKED_TABLE: Final[str] = """
CREATE TABLE IF NOT EXISTS mqtt_acked (
    destination TEXT NOT NULL,
    device TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,
    PRIMARY KEY (destination, device, epoch, first_seq)
)
"""
ACKED_LOST_TABLE: Final[str] = """
CREATE TABLE IF NOT EXISTS mqtt_acked_lost (
    destination TEXT NOT NULL,
    device TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,
    PRIMARY KEY (destination, device, epoch, first_seq, end_seq)
)
"""

EpochKey = tuple[str, int]
LostKey = tuple[str, int, int, int]


def subtract(ranges: Iterable[Range], taken: Iterable[Range]) -> list[Range]:
    """The numbers of `ranges` outside `taken`."""
    taken = merge(taken)
    out: list[Range] = []
    for start, end in merge(ranges):
        out += complement(taken, start, end)
    return out


def lost_key(lost: LostRange) -> LostKey:
    return (lost.device, lost.epoch, lost.first_seq, lost.end_seq)


class Outbox:
    """One destination's acknowledgements in `path` (a database the SQLite sink has opened, so it has its layout)."""

    def __init__(self, path: Path, destination: str) -> None:
        self.path = path
        self.destination = destination
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(ACKED_TABLE)
            db.execute(ACKED_LOST_TABLE)
        except sqlite3.Error as exc:
            raise SinkError(f"cannot keep the MQTT outbox in {self.path}: {exc}") from exc
        self._db = db

    def acked(self) -> dict[EpochKey, list[Range]]:
        rows = self._query("SELECT device, epoch, first_seq, end_seq FROM mqtt_acked WHERE destination = ?")
        acked: dict[EpochKey, list[Range]] = {}
        for device, epoch, first, end in rows:
            acked.setdefault((device, epoch), []).append((first, end))
        return {key: merge(ranges) for key, ranges in acked.items()}

    def backlog(self, acked: dict[EpochKey, list[Range]]) -> tuple[dict[EpochKey, list[Range]], list[LostRange]]:
        """What is stored and not acknowledged: record ranges per (device, epoch), and lost ranges."""
        pending = {}
        for key, ranges in stored_ranges(self.path).items():
            left = subtract(ranges, acked.get(key, ()))
            if left:
                pending[key] = left
        done = {tuple(row) for row in self._query("SELECT device, epoch, first_seq, end_seq FROM mqtt_acked_lost "
                                                  "WHERE destination = ?")}
        return pending, [lost for lost in query_lost(self.path) if lost_key(lost) not in done]

    def read(self, device: str, epoch: int, first_seq: int, end_seq: int) -> list[StreamRecord]:
        return query_records(self.path, device=device, epoch=epoch, first_seq=first_seq, end_seq=end_seq)

    def set_acked(self, device: str, epoch: int, ranges: Sequence[Range]) -> None:
        """Replace what (device, epoch) has acknowledged by `ranges` (all of it, merged): one transaction."""
        rows = [(self.destination, device, epoch, first, end) for first, end in ranges]
        self._transaction([("DELETE FROM mqtt_acked WHERE destination = ? AND device = ? AND epoch = ?",
                            [(self.destination, device, epoch)]),
                           ("INSERT INTO mqtt_acked VALUES (?, ?, ?, ?, ?)", rows)])

    def add_acked_lost(self, ranges: Sequence[LostRange]) -> None:
        rows = [(self.destination, *lost_key(lost)) for lost in ranges]
        self._transaction([("INSERT OR IGNORE INTO mqtt_acked_lost VALUES (?, ?, ?, ?, ?)", rows)])

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        assert self._db is not None
        try:
            return self._db.execute(sql, (self.destination,)).fetchall()
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: MQTT outbox: {exc}") from exc

    def _transaction(self, statements: Sequence[tuple[str, Sequence[tuple[object, ...]]]]) -> None:
        assert self._db is not None
        transaction(self._db, f"{self.path}: MQTT outbox", statements)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
