"""The bridge against virtual boards in their own processes, through bleak and the Bumble backend: streaming,
drops from either side, silence, lost and garbled notifications, restarts, several devices, Heart Rate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.edge.bridge.bridge_harness import CollectingSink, Ticks, assert_whole, device_stats, run_bridge
from wedge.edge.bridge.daemon import Bridge
from wedge.edge.bridge.sinks.sqlite import SqliteSink, stored_records
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

MODEL = sample_path("ppg_quality")


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirProcess]:
    process = AirProcess(tmp_path_factory.mktemp("air"))
    yield process
    process.terminate()


def start_board(air: AirProcess, tmp_path: Path, name: str, rate_hz: float = 50.0) -> BleBoardProcess:
    return BleBoardProcess("ring-nrf52840", MODEL, air.spec, tmp_path, name=name,
                        extra_args=["--rate-hz", str(rate_hz), "--state-dir", str(tmp_path / name)])


async def command(board: BleBoardProcess, message: dict) -> dict:
    return await asyncio.to_thread(board.command, message)


def test_every_record_reaches_sqlite_in_order_and_latency_is_measured(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "stream-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        # The board buffered records before the bridge came: those arrive by backfill, then live ones follow.
        await collected.wait_for(lambda r: sum(not x.backfill for x in r) >= 100)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["stream-1"], [SqliteSink(tmp_path / "s.db"), collected], scenario))
    finally:
        board.terminate()
    rows = [r.seq for r in stored_records(tmp_path / "s.db", "stream-1")]
    assert_whole(rows)
    assert_whole(collected.seqs("stream-1"))
    # How low it is, is bench/bridge_bench.py's figure: a loaded machine must not fail this test.
    assert summary.latency_p50_s is not None and summary.latency_p50_s > 0


def test_drops_from_the_device_side_lose_and_duplicate_nothing(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "drop-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more("drop-1", 30)
        for _ in range(3):
            assert (await command(board, {"cmd": "disconnect"}))["disconnected"] == 1
            await collected.more("drop-1", 60)
        status = await ticks.wait_for(lambda s: device_stats(s, "drop-1")["connects"] >= 4)
        assert device_stats(status, "drop-1")["disconnects"] >= 3

    try:
        summary = asyncio.run(run_bridge(air.spec, ["drop-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs("drop-1"))
    assert device_stats(summary, "drop-1")["lost"] == 0


def test_a_silent_link_is_detected_within_3_s_and_rebuilt_without_loss(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "silent-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more("silent-1", 30)
        loop = asyncio.get_running_loop()
        await command(board, {"cmd": "silent", "on": True})
        went_silent = loop.time()
        await ticks.wait_for(lambda s: device_stats(s, "silent-1")["silent_disconnects"] >= 1, timeout_s=5.0)
        assert loop.time() - went_silent < 3.0
        await command(board, {"cmd": "silent", "on": False})
        await collected.more("silent-1", 100)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["silent-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs("silent-1"))
    assert device_stats(summary, "silent-1")["connects"] >= 2


def test_lost_notifications_are_backfilled_without_reconnecting(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "gap-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more("gap-1", 20)
        await command(board, {"cmd": "drop", "frames": 4})
        await ticks.wait_for(lambda s: device_stats(s, "gap-1")["backfill_requests"] >= 1)
        await collected.more("gap-1", 80)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["gap-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs("gap-1"))
    stats = device_stats(summary, "gap-1")
    assert stats["connects"] == 1 and stats["lost"] == 0
    assert any(r.backfill for r in collected.records)


def test_garbled_notifications_are_counted_and_the_stream_goes_on(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "garble-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more("garble-1", 20)
        await command(board, {"cmd": "malformed", "count": 5})
        await ticks.wait_for(lambda s: device_stats(s, "garble-1")["malformed"] >= 5)
        await collected.more("garble-1", 50)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["garble-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs("garble-1"))
    assert device_stats(summary, "garble-1")["malformed"] == 5


def test_a_restarted_board_continues_its_numbers_and_nothing_is_lost(air: AirProcess, tmp_path: Path) -> None:
    boards = [start_board(air, tmp_path, "restart-1")]
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.more("restart-1", 40)
        assert await asyncio.to_thread(boards[0].terminate) == 0
        boards.append(await asyncio.to_thread(start_board, air, tmp_path, "restart-1"))
        assert boards[-1].info["boot_count"] == 2
        await collected.more("restart-1", 60)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["restart-1"], [collected], scenario))
    finally:
        for board in boards:
            board.terminate()
    assert_whole(collected.seqs("restart-1"))
    assert device_stats(summary, "restart-1")["lost"] == 0


def test_several_boards_stream_at_once_each_whole(air: AirProcess, tmp_path: Path) -> None:
    names = ["multi-1", "multi-2", "multi-3"]
    with ThreadPoolExecutor(len(names)) as pool:
        boards = list(pool.map(lambda n: start_board(air, tmp_path, n), names))
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda _r: all(len(collected.seqs(n)) >= 100 for n in names), timeout_s=30)

    try:
        asyncio.run(run_bridge(air.spec, names, [collected], scenario))
    finally:
        for board in boards:
            board.terminate()
    for name in names:
        assert_whole(collected.seqs(name))


def test_the_heart_rate_profile_streams_a_standard_heart_rate_service(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path, "hrs-1", rate_hz=5.0)
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda r: len(r) >= 3, timeout_s=15)

    try:
        asyncio.run(run_bridge(air.spec, ["hrs-1"], [collected], scenario, profile="heart-rate"))
    finally:
        board.terminate()
    assert [r.seq for r in collected.records][:3] == [0, 1, 2]
    assert all(r.kind == "heart_rate" and 40 <= r.values[0] <= 180 for r in collected.records)
