"""Nothing lost, nothing mixed up: `wedge bridge` processes against virtual boards that crash, reset and share a
name, with SQLite checked against what each board itself produced (its record log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.edge.bridge.bridge_harness import start_board
from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import gap_check, stored_records
from wedge.firmware.virtual.ble.ring_buffer import LOG_FILE, STREAM_FILE, logged_records
from wedge.firmware.virtual.processes import AirProcess


def start_bridge(air: AirProcess, name: str, db: Path, jsonl: Path) -> BridgeProcess:
    # One keystore for every run: a restarted bridge re-encrypts with the bond its first run made.
    return BridgeProcess([name], [f"sqlite:{db}", f"jsonl:{jsonl}"], jsonl.with_suffix(".log"), transport=air.spec,
                         keystore=db.with_name("bonds.json"))


def device(status: dict[str, Any], key: str) -> dict[str, Any]:
    return next((d for d in status["devices"] if d["key"] == key), {})


def caught_up(status: dict[str, Any], key: str, epoch: int, at_least: int) -> bool:
    """Following `epoch` with no gap open, and at least `at_least` records released in this run."""
    d = device(status, key)
    return d.get("state") == "streaming" and d.get("epoch") == epoch and d.get("gaps_open") == 0 \
        and d.get("records", 0) >= at_least


def stored_keys(db: Path, key: str) -> set[tuple[int, int]]:
    return {(r.epoch, r.seq) for r in stored_records(db, key)} if db.exists() else set()


def delivered(jsonl: Path) -> list[tuple[int, int]]:
    return [(r["epoch"], r["seq"]) for r in map(json.loads, jsonl.read_text().splitlines()) if "seq" in r]


def test_a_killed_board_then_three_bridge_restarts_lose_nothing_and_resend_nothing(air: AirProcess,
                                                                                  tmp_path: Path) -> None:
    state = tmp_path / "k9"
    board = start_board(air, state, "k9-ring")
    key = board.info["device_id"]
    db = tmp_path / "stream.db"
    bridge = start_bridge(air, "k9-ring", db, tmp_path / "run0.jsonl")
    try:
        bridge.wait_status("streaming", lambda s: caught_up(s, key, board.info["epoch"], 60))
        board.kill()  # mid-stream: records in flight are only in the board's record log
        board = start_board(air, state, "k9-ring")
        bridge.wait_status("the new epoch, the old one's tail fetched",
                           lambda s: caught_up(s, key, board.info["epoch"], 100))
        assert bridge.terminate(30) == 0
        for run in (1, 2, 3):
            before = stored_keys(db, key)
            jsonl = tmp_path / f"run{run}.jsonl"
            bridge = start_bridge(air, "k9-ring", db, jsonl)
            status = bridge.wait_status(f"run {run} caught up", lambda s: caught_up(s, key, board.info["epoch"], 30))
            assert bridge.terminate(30) == 0
            assert device(status, key)["lost"] == 0 and device(status, key)["duplicates"] == 0
            # What was stored is never sent again: the device is asked for exactly the numbers SQLite misses.
            sent = delivered(jsonl)
            assert len(sent) == len(set(sent)) and not set(sent) & before
    finally:
        bridge.terminate(30)
        board.terminate()
    produced = {(r.epoch, r.seq) for r in logged_records(state)}
    stored = stored_keys(db, key)
    killed_epoch = min(e for e, _ in produced)
    assert {k for k in produced if k[0] == killed_epoch} <= stored  # the crashed epoch, to its last record
    newest = max(s for e, s in stored if e == board.info["epoch"])
    assert {k for k in produced if k[0] != killed_epoch and k[1] <= newest} <= stored
    assert stored <= produced
    assert all(g.open == () and g.lost == () for g in gap_check(db, key))


def test_a_board_reset_while_no_bridge_runs_is_reported_and_its_new_epoch_stored_from_0(air: AirProcess,
                                                                                       tmp_path: Path) -> None:
    state = tmp_path / "reset"
    db = tmp_path / "stream.db"
    board = start_board(air, state, "reset-ring")
    key, first = board.info["device_id"], board.info["epoch"]
    bridge = start_bridge(air, "reset-ring", db, tmp_path / "run0.jsonl")
    try:
        bridge.wait_status("streaming", lambda s: caught_up(s, key, first, 100))
        assert board.terminate() == 0
        board = start_board(air, state, "reset-ring")  # a reboot: the first epoch's tail is fetched by name
        second = board.info["epoch"]
        produced_first = {(r.epoch, r.seq) for r in logged_records(state) if r.epoch == first}
        bridge.wait_status("the first epoch whole", lambda s: caught_up(s, key, second, 1)
                           and {k for k in stored_keys(db, key) if k[0] == first} == produced_first)
        assert bridge.terminate(30) == 0
        assert board.terminate() == 0
        # A factory reset: the stream state and the buffer are erased, the device id is the hardware's.
        for name in (STREAM_FILE, LOG_FILE):
            (state / name).unlink()
        board = start_board(air, state, "reset-ring")
        third = board.info["epoch"]
        assert board.info["device_id"] == key and third not in (first, second)
        bridge = start_bridge(air, "reset-ring", db, tmp_path / "run1.jsonl")
        status = bridge.wait_status("the new epoch", lambda s: caught_up(s, key, third, 100))
        assert bridge.terminate(30) == 0
    finally:
        bridge.terminate(30)
        board.terminate()
    event = f"restarted its sequence: epoch {second} -> {third}"
    assert event in device(status, key)["last_event"] and event in bridge.log_path.read_text()
    stored = stored_keys(db, key)
    assert {k for k in stored if k[0] == first} == produced_first
    for epoch in (second, third):
        numbers = sorted(s for e, s in stored if e == epoch)
        assert numbers == list(range(len(numbers)))  # from 0 again, none swallowed by an older epoch's numbers
    assert len([k for k in stored if k[0] == third]) >= 100
    # The second epoch's last records (made after the bridge stopped) went with the reset: nobody can know them.
    assert all(g.open == () and g.lost == () for g in gap_check(db, key))


def test_two_boards_with_one_name_are_two_devices_and_their_records_never_mix(air: AirProcess,
                                                                              tmp_path: Path) -> None:
    boards = [start_board(air, tmp_path / f"twin-{i}", "twin") for i in (1, 2)]
    keys = [b.info["device_id"] for b in boards]
    assert keys[0] != keys[1] and boards[0].info["address"] != boards[1].info["address"]
    db = tmp_path / "stream.db"
    bridge = start_bridge(air, "twin", db, tmp_path / "twins.jsonl")
    try:
        bridge.wait_status("both twins", lambda s: all(
            caught_up(s, k, b.info["epoch"], 150) for k, b in zip(keys, boards, strict=True)), timeout_s=90)
        assert bridge.terminate(30) == 0
        status = bridge.latest
    finally:
        bridge.terminate(30)
        for board in boards:
            board.terminate()
    assert all(device(status, k)["lost"] == 0 and device(status, k)["name"] == "twin" for k in keys)
    for i, k in zip((1, 2), keys, strict=True):
        produced = {(r.epoch, r.seq): r.t_device_us for r in logged_records(tmp_path / f"twin-{i}")}
        stored = {(r.epoch, r.seq): r.t_device_us for r in stored_records(db, k)}
        newest = max(seq for _, seq in stored)
        # Each row is its own board's record (same key, same device time), and every one up to the newest is there.
        assert stored == {key: t for key, t in produced.items() if key[1] <= newest}
