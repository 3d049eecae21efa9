"""The bridge against virtual boards in their own processes, through bleak and the Bumble backend: streaming,
drops from either side, silence, lost and garbled notifications, restarts, several devices, Heart Rate."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.edge.bridge.bridge_harness import CollectingSink, Ticks, assert_whole, device_stats, run_bridge, start_board
from wedge.edge.bridge.daemon import Bridge
from wedge.edge.bridge.sinks.sqlite import SqliteSink, stored_records
from wedge.firmware.virtual.ble.ring_buffer import logged_records
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess


def board_in(air: AirProcess, tmp_path: Path, name: str, rate_hz: float = 50.0) -> BleBoardProcess:
    return start_board(air, tmp_path / name, name, rate_hz)


def key(board: BleBoardProcess) -> str:
    """The device id the board's records are stored under."""
    return str(board.info["device_id"])


async def command(board: BleBoardProcess, message: dict) -> dict:
    return await asyncio.to_thread(board.command, message)


def test_every_record_reaches_sqlite_in_order_and_latency_is_measured(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "stream-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        # The board buffered records before the bridge came: those arrive by backfill, then live ones follow.
        await collected.wait_for(lambda r: sum(not x.backfill for x in r) >= 100)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["stream-1"], [SqliteSink(tmp_path / "s.db"), collected], scenario))
    finally:
        board.terminate()
    rows = [r.seq for r in stored_records(tmp_path / "s.db", key(board))]
    assert_whole(rows)
    assert_whole(collected.seqs(key(board)))
    # How low it is, is bench/bridge_bench.py's figure: a loaded machine must not fail this test.
    assert summary.latency_p50_s is not None and summary.latency_p50_s > 0


def test_drops_from_the_device_side_lose_and_duplicate_nothing(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "drop-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more(key(board), 30)
        for _ in range(3):
            assert (await command(board, {"cmd": "disconnect"}))["disconnected"] == 1
            await collected.more(key(board), 60)
        status = await ticks.wait_for(lambda s: device_stats(s, key(board))["connects"] >= 4)
        assert device_stats(status, key(board))["disconnects"] >= 3

    try:
        summary = asyncio.run(run_bridge(air.spec, ["drop-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs(key(board)))
    assert device_stats(summary, key(board))["lost"] == 0


def test_a_silent_link_is_detected_within_3_s_and_rebuilt_without_loss(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "silent-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more(key(board), 30)
        loop = asyncio.get_running_loop()
        await command(board, {"cmd": "silent", "on": True})
        went_silent = loop.time()
        await ticks.wait_for(lambda s: device_stats(s, key(board))["silent_disconnects"] >= 1, timeout_s=5.0)
        assert loop.time() - went_silent < 3.0
        await command(board, {"cmd": "silent", "on": False})
        await collected.more(key(board), 100)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["silent-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs(key(board)))
    assert device_stats(summary, key(board))["connects"] >= 2


def test_lost_notifications_are_backfilled_without_reconnecting(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "gap-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more(key(board), 20)
        await command(board, {"cmd": "drop", "frames": 4})
        await ticks.wait_for(lambda s: device_stats(s, key(board))["backfill_requests"] >= 1)
        await collected.more(key(board), 80)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["gap-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs(key(board)))
    stats = device_stats(summary, key(board))
    assert stats["connects"] == 1 and stats["lost"] == 0
    assert any(r.backfill for r in collected.records)


def test_garbled_notifications_are_counted_and_the_stream_goes_on(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "garble-1")
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more(key(board), 20)
        await command(board, {"cmd": "malformed", "count": 5})
        await ticks.wait_for(lambda s: device_stats(s, key(board))["malformed"] >= 5)
        await collected.more(key(board), 50)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["garble-1"], [collected], scenario))
    finally:
        board.terminate()
    assert_whole(collected.seqs(key(board)))
    assert device_stats(summary, key(board))["malformed"] == 5


def test_a_restarted_board_starts_a_new_epoch_the_bridge_reports_and_nothing_is_lost(air: AirProcess,
                                                                                    tmp_path: Path) -> None:
    boards = [board_in(air, tmp_path, "restart-1")]
    device = key(boards[0])
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, ticks: Ticks) -> None:
        await collected.more(device, 40)
        assert await asyncio.to_thread(boards[0].terminate) == 0
        boards.append(await asyncio.to_thread(board_in, air, tmp_path, "restart-1"))
        assert boards[-1].info["boot_count"] == 2 and key(boards[-1]) == device
        await collected.wait_for(lambda _r: len(collected.seqs(device, boards[-1].info["epoch"])) >= 60)
        await ticks.wait_for(lambda s: device_stats(s, device)["gaps_open"] == 0)

    try:
        summary = asyncio.run(run_bridge(air.spec, ["restart-1"], [collected], scenario))
    finally:
        for board in boards:
            board.terminate()
    old, new = boards[0].info["epoch"], boards[-1].info["epoch"]
    assert new == old + 1 and collected.epochs(device) == [old, new]
    # The old epoch is whole up to the board's last record (its tail by backfill); the new one starts at 0.
    produced = {(r.epoch, r.seq) for r in logged_records(tmp_path / "restart-1") if r.epoch == old}
    assert {(old, s) for s in collected.seqs(device, old)} == produced
    assert_whole(collected.seqs(device, old))
    assert_whole(collected.seqs(device, new))
    stats = device_stats(summary, device)
    assert stats["lost"] == 0 and stats["duplicates"] == 0 and stats["epoch_changes"] == 1
    assert stats["last_event"] == f"device restart-1 ({device}) restarted its sequence: epoch {old} -> {new}"


def test_several_boards_stream_at_once_each_whole(air: AirProcess, tmp_path: Path) -> None:
    names = ["multi-1", "multi-2", "multi-3"]
    with ThreadPoolExecutor(len(names)) as pool:
        boards = list(pool.map(lambda n: board_in(air, tmp_path, n), names))
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda _r: all(len(collected.seqs(key(b))) >= 100 for b in boards), timeout_s=30)

    try:
        asyncio.run(run_bridge(air.spec, names, [collected], scenario))
    finally:
        for board in boards:
            board.terminate()
    for board in boards:
        assert_whole(collected.seqs(key(board)))


def test_the_heart_rate_profile_streams_a_standard_heart_rate_service(air: AirProcess, tmp_path: Path) -> None:
    board = board_in(air, tmp_path, "hrs-1", rate_hz=5.0)
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda r: len(r) >= 3, timeout_s=15)

    try:
        asyncio.run(run_bridge(air.spec, ["hrs-1"], [collected], scenario, profile="heart-rate"))
    finally:
        board.terminate()
    assert [r.seq for r in collected.records][:3] == [0, 1, 2]
    assert all(r.kind == "heart_rate" and 40 <= r.values[0] <= 180 for r in collected.records)
