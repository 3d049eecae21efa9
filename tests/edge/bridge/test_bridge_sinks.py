"""Sinks: SQLite never duplicates and tells where to resume, JSON lines, the WebSocket sink's page and token."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import wedge
from tests.edge.bridge.bridge_harness import stuck_ws_client
from wedge.edge.bridge.coverage import Coverage, EpochCoverage
from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sink_runner import SinkRunner
from wedge.edge.bridge.sinks import parse_sink
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SCHEMA_VERSION, SqliteSink, gap_check, stored_records
from wedge.edge.bridge.sinks.websocket import WebSocketSink
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.protocol.ble_records import Output, OutputDType, Record


def record(device: str, seq: int, t_us: int = 1, epoch: int = 1) -> StreamRecord:
    return StreamRecord.from_record(device, Record(seq, t_us, 7, (Output(OutputDType.FLOAT32, (0.5, 1.5)),),
                                                   epoch=epoch), 2)


async def coverage_of(sink: SqliteSink, device: str, *windows: tuple[int, int, int]) -> Coverage:
    return await sink.coverage(device, [EpochSpan(*w) for w in windows])


def test_sqlite_keeps_one_row_per_device_epoch_and_seq(tmp_path: Path) -> None:
    async def scenario() -> None:
        sink = SqliteSink(tmp_path / "s.db")
        await sink.open()
        await sink.write([record("a", 0), record("a", 1), record("b", 0), record("a", 0, epoch=2)])
        await sink.write([record("a", 1), record("a", 2)])
        await sink.close()

    asyncio.run(scenario())
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT device, epoch, seq FROM records ORDER BY device, epoch, seq").fetchall() == [
        ("a", 1, 0), ("a", 1, 1), ("a", 1, 2), ("a", 2, 0), ("b", 1, 0)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_sqlite_coverage_names_exactly_what_is_stored_and_lost_per_epoch(tmp_path: Path) -> None:
    async def scenario() -> tuple[Coverage, Coverage]:
        sink = SqliteSink(tmp_path / "s.db")
        await sink.open()
        await sink.write([record("a", s) for s in (0, 1, 2, 5, 6, 9)] + [record("a", 0, epoch=2)])
        await sink.note_lost([LostRange("a", 1, 3, 4, 0)])
        # The device still buffers epoch 1 from 2 and epoch 2 from 0; epoch 3 is new.
        found = await coverage_of(sink, "a", (1, 2, 12), (2, 0, 5), (3, 0, 4))
        nobody = await coverage_of(sink, "nobody", (1, 0, 10))
        await sink.close()
        return found, nobody

    found, nobody = asyncio.run(scenario())
    assert found.known and found.last_epoch == 2
    assert found.epoch(1) == EpochCoverage(((2, 4), (5, 7), (9, 10)), end_below=2, newest=10)
    assert found.epoch(2) == EpochCoverage(((0, 1),), end_below=None, newest=1)
    assert found.epoch(3) == EpochCoverage()
    assert not nobody.known and nobody.epoch(1) == EpochCoverage()


def test_a_gap_check_tells_lost_records_from_missing_ones_and_new_epochs_are_not_holes(tmp_path: Path) -> None:
    async def scenario() -> None:
        sink = SqliteSink(tmp_path / "s.db")
        await sink.open()
        await sink.write([record("a", s) for s in (0, 1, 4, 7)] + [record("a", s, epoch=9) for s in range(3)])
        await sink.note_lost([LostRange("a", 1, 2, 4, 0)])
        await sink.close()

    asyncio.run(scenario())
    first, second = gap_check(tmp_path / "s.db")
    assert (first.epoch, first.stored, first.lost, first.open) == (1, 4, ((2, 4),), ((5, 7),))
    assert (second.epoch, second.stored, second.lost, second.open) == (9, 3, (), ())


def _v1_database(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(V1_SCHEMA)
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [("wedge-ring", s, s, s + 1, "wedge", 7, "[0.5]", "{}") for s in range(rows)])
    db.commit()
    db.close()


V1_SCHEMA = """CREATE TABLE records (device TEXT NOT NULL, seq INTEGER NOT NULL, t_device_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL, kind TEXT NOT NULL, model_id INTEGER, vals TEXT NOT NULL, detail TEXT NOT NULL,
    UNIQUE (device, seq))"""


def test_a_v1_database_is_migrated_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_database(path, 50)

    async def scenario() -> Coverage:
        sink = SqliteSink(path)
        await sink.open()
        # The same numbers again, in a new epoch of the same device: stored beside the old ones, not ignored.
        await sink.write([record("wedge-ring", s, epoch=3) for s in range(10)])
        found = await coverage_of(sink, "wedge-ring", (0, 0, 50), (3, 0, 10))
        await sink.close()
        return found

    found = asyncio.run(scenario())
    assert found.epoch(0).covered == ((0, 50),) and found.epoch(3).covered == ((0, 10),)
    rows = stored_records(path, "wedge-ring")
    assert [(r.epoch, r.seq) for r in rows] == [(0, s) for s in range(50)] + [(3, s) for s in range(10)]
    assert rows[7].t_device_us == 7 and rows[7].values == (0.5,)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")] == [
        "lost", "models", "records"]
    assert db.execute("SELECT t_device, received FROM records WHERE seq = 7 AND epoch = 0").fetchone() == (
        "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z")


V2_SCHEMA = """CREATE TABLE records (device TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    t_device_us INTEGER NOT NULL, received_us INTEGER NOT NULL, kind TEXT NOT NULL, model_id INTEGER,
    vals TEXT NOT NULL, detail TEXT NOT NULL, UNIQUE (device, epoch, seq))"""


def test_a_v2_database_is_migrated_in_place_to_verdicts_iso_times_and_models(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path)
    db.execute(V2_SCHEMA)
    db.execute("CREATE TABLE lost (device TEXT NOT NULL, epoch INTEGER NOT NULL, first_seq INTEGER NOT NULL, "
               "end_seq INTEGER NOT NULL, noted_us INTEGER NOT NULL, PRIMARY KEY (device, epoch, first_seq))")
    detail = json.dumps({"outputs": [{"dtype": "float32", "raw": [0.5, 1.5], "scale": None, "zero_point": None}]})
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [("ring", 5, s, 1_700_000_000_123_456 + s, 1_700_000_000_200_000, "wedge", 7, "[0.5, 1.5]",
                     detail) for s in range(30)] + [("hr", 0, 0, 5, 5, "heart_rate", None, "[61.0]", '{"bpm": 61}')])
    db.execute("INSERT INTO lost VALUES ('ring', 5, 30, 32, 9)")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()

    async def scenario() -> None:
        sink = SqliteSink(path)
        await sink.open()
        await sink.close()

    asyncio.run(scenario())
    rows = stored_records(path, "ring")
    assert [(r.epoch, r.seq) for r in rows] == [(5, s) for s in range(30)] and rows[3].values == (0.5, 1.5)
    assert rows[0].label is None and rows[0].detail["tensors"][0]["raw"] == [0.5, 1.5]
    assert "outputs" not in rows[0].detail
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("SELECT t_device, received FROM records WHERE device = 'ring' AND seq = 0").fetchone() == (
        "2023-11-14T22:13:20.123Z", "2023-11-14T22:13:20.200Z")
    assert db.execute("SELECT detail FROM records WHERE device = 'hr'").fetchone() == ('{"bpm": 61}',)
    assert gap_check(path, "ring")[0].lost == ((30, 32),)


def test_a_migration_that_cannot_finish_leaves_the_v1_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_database(path, 20)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database

    async def scenario() -> None:
        sink = SqliteSink(path, busy_timeout_s=0.1)
        try:
            await sink.open()
        finally:
            await sink.close()

    with pytest.raises(SinkError, match="locked"):
        asyncio.run(scenario())
    blocker.rollback()
    blocker.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 20
    assert "epoch" not in [c[1] for c in db.execute("PRAGMA table_info(records)")]


def test_a_migration_killed_midway_leaves_either_database_whole(tmp_path: Path) -> None:
    # A real process migrating a large database, killed with SIGKILL: SQLite's journal makes it all or nothing.
    path = tmp_path / "big.db"
    _v1_database(path, 400_000)
    script = ("import asyncio, sys; from pathlib import Path; from wedge.edge.bridge.sinks.sqlite import SqliteSink\n"
              "print('opening', flush=True); asyncio.run(SqliteSink(Path(sys.argv[1])).open())\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(wedge.__file__).parents[1])})
    assert child.stdout is not None and child.stdout.readline() == "opening\n"
    time.sleep(0.3)  # the migration copies 400,000 rows for about a second: kill it somewhere inside
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    db = sqlite3.connect(path)
    columns = [c[1] for c in db.execute("PRAGMA table_info(records)")]
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 400_000
    assert ("epoch" in columns) == (db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION)
    db.close()
    asyncio.run(_open_and_close(path))  # whichever it was, the next open finishes the job
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*), MIN(epoch), MAX(epoch), MAX(seq) FROM records").fetchone() == (
        400_000, 0, 0, 399_999)


async def _open_and_close(path: Path) -> None:
    sink = SqliteSink(path)
    await sink.open()
    await sink.close()


def test_a_locked_database_delays_records_but_loses_none(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def scenario() -> None:
        sink = SqliteSink(path, busy_timeout_s=0.05)
        await sink.open()
        blocker = sqlite3.connect(path, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        runner = SinkRunner(sink)
        runner.start()
        runner.put([record("a", i) for i in range(5)])
        assert not await runner.flush(0.5)
        assert runner.stats.errors >= 1 and runner.pending == 5
        blocker.rollback()
        blocker.close()
        assert await runner.flush(10.0)
        await runner.close()

    asyncio.run(scenario())
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM records").fetchone()[0] == 5


def test_jsonl_writes_one_object_per_record(tmp_path: Path) -> None:
    async def scenario() -> None:
        sink = JsonLinesSink(tmp_path / "out.jsonl")
        await sink.open()
        await sink.write([record("a", 3), record("a", 4)])
        await sink.note_lost([LostRange("a", 1, 5, 7, 99)])
        await sink.close()

    asyncio.run(scenario())
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["device"], r["epoch"], r["seq"], r["outputs"]) for r in lines[:2]] == [
        ("wedge", "a", 1, 3, [0.5, 1.5]), ("wedge", "a", 1, 4, [0.5, 1.5])]
    assert lines[2] == {"kind": "lost", "device": "a", "epoch": 1, "first_seq": 5, "end_seq": 7, "noted_us": 99}


@pytest.mark.parametrize("spec", ["mqtt://x", "sqlite:", "jsonl:", "ws://127.0.0.1", "ws://:80"])
def test_bad_sink_specs_are_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(SinkError):
        parse_sink(spec)


def test_a_websocket_sink_off_the_loopback_requires_a_token() -> None:
    with pytest.raises(SinkError, match="token"):
        WebSocketSink("0.0.0.0", 8765)


def test_the_websocket_sink_serves_the_page_and_pushes_history_then_live_records() -> None:
    async def scenario() -> None:
        sink = WebSocketSink("127.0.0.1", 0, token="s3cret")
        await sink.open()
        port = sink.bound_port
        try:
            await sink.write([record("ring", 0)])
            with pytest.raises(InvalidStatus):
                async with connect(f"ws://127.0.0.1:{port}/stream"):
                    pass
            async with connect(f"ws://127.0.0.1:{port}/stream?token=s3cret") as ws:
                history = json.loads(await ws.recv())
                await sink.write([record("ring", 1)])
                live = json.loads(await ws.recv())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /?token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n")
            page = await reader.read(65536)
            writer.close()
        finally:
            await sink.close()
        assert [r["seq"] for r in history["records"]] == [0]
        assert [r["seq"] for r in live["records"]] == [1]
        assert b"200 OK" in page and "wedge · live".encode() in page

    asyncio.run(scenario())


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records]


def test_a_client_that_stops_reading_is_dropped_in_one_line_and_the_others_get_everything(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    batch = [record("ring", s) for s in range(500)]

    async def scenario() -> tuple[int, int]:
        sink = WebSocketSink("127.0.0.1", 0, client_backlog_bytes=256 * 1024, keepalive_s=60)
        await sink.open()
        stuck = await asyncio.to_thread(stuck_ws_client, sink.bound_port)
        received = 0
        try:
            async with connect(f"ws://127.0.0.1:{sink.bound_port}/stream", max_size=None) as reader:
                for _ in range(80):  # about 12 MB: far more than the kernel buffers for the stuck client
                    await sink.write(batch)
                    received += len(json.loads(await reader.recv())["records"])
                async with asyncio.timeout(10):
                    while sink.clients > 1:
                        await asyncio.sleep(0.05)  # polling the sink's own count; the close is its doing
        finally:
            stuck.close()
            await sink.close()
        return received, sink.stats.dropped_slow

    received, dropped = asyncio.run(scenario())
    assert received == 80 * 500 and dropped == 1
    lines = [r.getMessage() for r in caplog.records if "dropped client" in r.getMessage()]
    assert len(lines) == 1 and "reads too slowly" in lines[0]
    _no_tracebacks(caplog)


def test_a_client_that_never_answers_a_keepalive_ping_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> bytes:
        sink = WebSocketSink("127.0.0.1", 0, keepalive_s=0.3)
        await sink.open()
        stuck = await asyncio.to_thread(stuck_ws_client, sink.bound_port)
        try:
            async with asyncio.timeout(10):
                while sink.clients:
                    await sink.write([record("ring", 0)])
                    await asyncio.sleep(0.05)
            stuck.settimeout(5)
            rest = b""
            while chunk := await asyncio.to_thread(stuck.recv, 65536):
                rest += chunk  # the server closed its side: the client reads to the end of the stream
        finally:
            stuck.close()
            await sink.close()
        return rest

    asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if "keepalive" in r.getMessage() and "closed client" in
            r.getMessage()] != []
    _no_tracebacks(caplog)


def test_clients_that_vanish_at_any_moment_leave_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wedge")

    def reset(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # an RST: the peer is gone without a close handshake

    async def scenario() -> None:
        sink = WebSocketSink("127.0.0.1", 0)
        await sink.open()
        port = sink.bound_port
        await sink.write([record("ring", s) for s in range(600)])  # a history to send to each newcomer
        try:
            half = socket.create_connection(("127.0.0.1", port))
            half.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nUpg")
            reset(half)  # mid-handshake
            for _ in range(3):
                sock = await asyncio.to_thread(stuck_ws_client, port)
                await sink.write([record("ring", s) for s in range(2000)])
                reset(sock)  # with data on its way
                await sink.write([record("ring", s) for s in range(2000)])
            async with asyncio.timeout(10):
                while sink.clients:
                    await sink.write([record("ring", 1)])
                    await asyncio.sleep(0.05)
        finally:
            await sink.close()

    asyncio.run(scenario())
    _no_tracebacks(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
