"""Sinks: SQLite never duplicates and tells where to resume, JSON lines, the WebSocket sink's page and token."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wedge.edge.bridge.errors import SinkError
from wedge.edge.bridge.sink_runner import SinkRunner
from wedge.edge.bridge.sinks import parse_sink
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.sinks.websocket import WebSocketSink
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.firmware.protocol.ble_records import Output, OutputDType, Record


def record(device: str, seq: int, t_us: int = 1) -> StreamRecord:
    return StreamRecord.from_record(device, Record(seq, t_us, 7, (Output(OutputDType.FLOAT32, (0.5, 1.5)),)), 2)


def test_sqlite_keeps_one_row_per_device_and_seq_and_names_the_last_one(tmp_path: Path) -> None:
    async def scenario() -> int | None:
        sink = SqliteSink(tmp_path / "s.db")
        await sink.open()
        await sink.write([record("a", 0), record("a", 1), record("b", 0)])
        await sink.write([record("a", 1), record("a", 2)])
        last = await sink.resume_after("a")
        assert await sink.resume_after("nobody") is None
        await sink.close()
        return last

    assert asyncio.run(scenario()) == 2
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT device, seq FROM records ORDER BY device, seq").fetchall() == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_resumes_at_the_first_hole_so_a_late_gap_is_fetched_again(tmp_path: Path) -> None:
    async def scenario() -> int | None:
        sink = SqliteSink(tmp_path / "s.db")
        await sink.open()
        await sink.write([record("a", s) for s in (0, 1, 2, 5, 6)])
        resume = await sink.resume_after("a")
        await sink.close()
        return resume

    assert asyncio.run(scenario()) == 2


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
        await sink.close()

    asyncio.run(scenario())
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["device"], r["seq"], r["values"]) for r in lines] == [("a", 3, [0.5, 1.5]), ("a", 4, [0.5, 1.5])]


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
        assert b"200 OK" in page and b"wedge bridge" in page

    asyncio.run(scenario())
