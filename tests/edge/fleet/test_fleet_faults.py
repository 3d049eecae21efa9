"""A fleet through a real broker, with real processes (virtual boards on the virtual air, `wedge bridge` with an
MQTT sink, `wedge fleet` into SQLite and JSON lines), under faults: the broker stopped mid-stream for 10 s and
started again, the bridge killed (-9) and restarted, two bridges feeding one broker. After each, the fleet holds
every record the bridges stored, each once, by (device, epoch, seq)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.edge.bridge.bridge_harness import start_board
from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.sqlite import stored_records
from wedge.edge.fleet.broker import LocalBroker
from wedge.edge.fleet.process import FleetProcess
from wedge.firmware.virtual.ble.ring_buffer import logged_records
from wedge.firmware.virtual.processes import AirProcess

RATE_HZ = 50.0
OUTAGE_RECORDS = int(10 * RATE_HZ)  # what a 50 Hz ring produces in 10 s: the outage lasts until that much waits


def mqtt(status: dict[str, Any]) -> dict[str, Any]:
    return next(s["state"] for s in status["sinks"] if "state" in s)


def device(status: dict[str, Any], key: str) -> dict[str, Any]:
    return next((d for d in status["devices"] if d["key"] == key), {})


def keys(db: Path) -> list[tuple[str, int, int]]:
    return [(r.device, r.epoch, r.seq) for r in stored_records(db)]


def delivered(jsonl: Path) -> list[tuple[str, int, int]]:
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return [(r["device"], r["epoch"], r["seq"]) for r in lines if "seq" in r]


def start_bridge(air: AirProcess, name: str, url: str, db: Path) -> BridgeProcess:
    return BridgeProcess([name], [url, f"sqlite:{db}"], db.with_suffix(".log"), transport=air.spec)


def assert_fleet_has_exactly(fleet_db: Path, fleet_jsonl: Path, bridge_dbs: list[Path]) -> None:
    stored = sorted(k for db in bridge_dbs for k in keys(db))
    assert stored, "the bridges stored nothing"
    assert keys(fleet_db) == stored  # 0 lost (and SQLite's unique key: 0 stored twice)
    sent = delivered(fleet_jsonl)
    assert len(sent) == len(set(sent)), "the fleet passed a record on twice"  # its own de-duplication
    assert sorted(sent) == stored


def assert_bridge_kept_what_the_board_made(db: Path, state: Path, key: str) -> None:
    stored = {(e, s) for d, e, s in keys(db) if d == key}
    newest = max(stored)
    produced = {(r.epoch, r.seq) for r in logged_records(state)}
    assert {k for k in produced if k <= newest} <= stored <= produced


@pytest.mark.slow
def test_a_10_s_broker_outage_and_a_killed_bridge_lose_nothing_and_store_nothing_twice(
        air: AirProcess, mosquitto: LocalBroker, tmp_path: Path) -> None:
    state, db = tmp_path / "ring", tmp_path / "bridge.db"
    fleet_db, fleet_jsonl = tmp_path / "fleet.db", tmp_path / "fleet.jsonl"
    url = mosquitto.url("site-1")
    board = start_board(air, state, "fleet-ring", RATE_HZ)
    key = board.info["device_id"]
    fleet = FleetProcess(url, [f"sqlite:{fleet_db}", f"jsonl:{fleet_jsonl}"], tmp_path / "fleet.log")
    bridge = start_bridge(air, "fleet-ring", url, db)
    try:
        fleet.wait_status("connected", lambda s: s["connected"])
        bridge.wait_status("publishing", lambda s: mqtt(s)["published"] >= 100)
        fleet.wait_status("the device online", lambda s: device(s, key).get("state") == "online")

        mosquitto.stop()
        bridge.wait_status("10 s of records buffered", lambda s: mqtt(s)["broker"] == "buffering"
                           and mqtt(s)["buffering"] >= OUTAGE_RECORDS, timeout_s=40)
        assert "buffering" in bridge.log_tail(20)  # the bridge said so, on stderr
        mosquitto.start()
        bridge.wait_status("caught up", lambda s: mqtt(s)["broker"] == "connected" and mqtt(s)["buffering"] < 50)

        bridge.kill()  # SIGKILL: acknowledgements not yet in the outbox are published again after the restart
        fleet.wait_status("the last will", lambda s: device(s, key).get("link") == "bridge lost")
        bridge = start_bridge(air, "fleet-ring", url, db)
        status = bridge.wait_status("streaming again, caught up", lambda s: device(s, key).get("state") == "streaming"
                                    and mqtt(s)["published"] >= 100 and mqtt(s)["buffering"] < 50)
        assert device(status, key)["lost"] == 0
        assert bridge.terminate(30) == 0  # a clean stop publishes what is left
        total = len(keys(db))
        fleet.wait_status("everything the bridge stored", lambda s: s["records"] >= total)
    finally:
        bridge.terminate(30)
        board.terminate()
        assert fleet.terminate() == 0
    assert_fleet_has_exactly(fleet_db, fleet_jsonl, [db])
    assert_bridge_kept_what_the_board_made(db, state, key)


def test_two_bridges_feeding_one_broker_reach_one_fleet_database_whole(air: AirProcess, mosquitto: LocalBroker,
                                                                        tmp_path: Path) -> None:
    url = mosquitto.url("site-2")
    fleet_db, fleet_jsonl = tmp_path / "fleet.db", tmp_path / "fleet.jsonl"
    fleet = FleetProcess(url, [f"sqlite:{fleet_db}", f"jsonl:{fleet_jsonl}"], tmp_path / "fleet.log")
    boards = [start_board(air, tmp_path / name, name, RATE_HZ) for name in ("ring-left", "ring-right")]
    dbs = [tmp_path / f"{b.board_name}.db" for b in boards]
    bridges: list[BridgeProcess] = []
    try:
        fleet.wait_status("connected", lambda s: s["connected"])
        bridges = [start_bridge(air, b.board_name, url, db) for b, db in zip(boards, dbs, strict=True)]
        for bridge in bridges:
            bridge.wait_status("publishing", lambda s: mqtt(s)["published"] >= 150)
        for bridge in bridges:
            assert bridge.terminate(30) == 0
        total = sum(len(keys(db)) for db in dbs)
        status = fleet.wait_status("both devices", lambda s: s["records"] >= total)
    finally:
        for bridge in bridges:
            bridge.terminate(30)
        for board in boards:
            board.terminate()
        assert fleet.terminate() == 0
    assert sorted(d["key"] for d in status["devices"]) == sorted(b.info["device_id"] for b in boards)
    assert_fleet_has_exactly(fleet_db, fleet_jsonl, dbs)
    for board, db in zip(boards, dbs, strict=True):
        assert_bridge_kept_what_the_board_made(db, Path(db.parent / board.board_name), board.info["device_id"])
