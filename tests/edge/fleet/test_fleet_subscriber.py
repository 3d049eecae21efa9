"""The fleet subscriber against a real broker: every device's records into one database, a record published twice
stored once, lost ranges and statuses kept, malformed messages counted, and a persistent session that gets what
was published while it was away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tests.edge.mqtt_helpers import mqtt_sink, records
from wedge.edge.bridge.sinks.base import parse_sinks
from wedge.edge.bridge.sinks.mqtt import records_payload
from wedge.edge.bridge.sinks.mqtt_address import parse_mqtt_url
from wedge.edge.bridge.sinks.sqlite import gap_check, stored_records
from wedge.edge.bridge.stream_record import LostRange
from wedge.edge.fleet.broker import LocalBroker
from wedge.edge.fleet.subscriber import FleetStatus, FleetSubscriber

RING_A, RING_B = "00000000000000aa", "00000000000000bb"


async def run_fleet(url: str, sinks: Sequence[str], scenario: Callable[[FleetSubscriber], Awaitable[None]],
                    client_id: str = "fleet-test") -> FleetStatus:
    subscriber = FleetSubscriber(parse_mqtt_url(url), parse_sinks(sinks), client_id=client_id)
    stop = asyncio.Event()
    ticks = asyncio.Event()
    task = asyncio.create_task(subscriber.run(stop, lambda _status: ticks.set(), tick_s=0.05))
    try:
        async with asyncio.timeout(10):
            while not subscriber.connected:
                ticks.clear()
                await ticks.wait()
        await scenario(subscriber)
    finally:
        stop.set()
        status = await task
    return status


async def wait_until(subscriber: FleetSubscriber, predicate: Callable[[FleetSubscriber], bool],
                     timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate(subscriber):
            subscriber.changed.clear()
            await subscriber.changed.wait()


def test_two_devices_and_a_batch_published_twice_are_stored_once_each(broker: LocalBroker, tmp_path: Path) -> None:
    url = broker.url("fleet")
    fleet_db, fleet_jsonl = tmp_path / "fleet.db", tmp_path / "fleet.jsonl"

    async def scenario(subscriber: FleetSubscriber) -> None:
        bridges = [mqtt_sink(url, tmp_path / f"bridge-{name}.db") for name in ("a", "b")]
        for bridge in bridges:
            await bridge.open()
        await bridges[0].write(records(range(0, 300), device=RING_A))
        await bridges[1].write(records(range(0, 200), device=RING_B, epoch=1))
        await bridges[1].note_lost([LostRange(RING_B, 1, 200, 210, 7)])
        bridges[0].note_devices([{"key": RING_A, "state": "streaming", "name": "ring-a", "battery_percent": 64,
                                  "epoch": 3}])
        # A batch whose acknowledgement was cut off is published again; and a message that is not JSON at all.
        async with parse_mqtt_url(url).client("replay") as raw:
            await raw.publish(f"fleet/{RING_A}/records", records_payload(records(range(100, 150), device=RING_A),
                                                                         "ring-a"), qos=1)
            await raw.publish(f"fleet/{RING_A}/records", b"{not json", qos=1)
        await wait_until(subscriber, lambda s: s.records == 500 and s.duplicates == 50 and s.malformed == 1
                         and s.devices[RING_A].status.get("battery_percent") == 64 and s.devices[RING_B].lost)
        for bridge in bridges:
            await bridge.close()

    status = asyncio.run(run_fleet(url, [f"sqlite:{fleet_db}", f"jsonl:{fleet_jsonl}"], scenario))
    assert (status.records, status.duplicates, status.malformed) == (500, 50, 1)
    stored = [(r.device, r.epoch, r.seq) for r in stored_records(fleet_db)]
    assert stored == [(RING_A, 3, s) for s in range(300)] + [(RING_B, 1, s) for s in range(200)]
    lines = [json.loads(line) for line in fleet_jsonl.read_text().splitlines()]
    keys = [(r["device"], r["epoch"], r["seq"]) for r in lines if "seq" in r]
    assert sorted(keys) == stored  # the fleet de-duplicated itself, not only SQLite's unique key
    assert [g.lost for g in gap_check(fleet_db, RING_B)] == [((200, 210),)]
    devices = {d["key"]: d for d in status.devices}
    assert devices[RING_A]["name"] == "ring-a" and devices[RING_A]["state"] in ("online", "offline")
    assert (devices[RING_A]["duplicates"], devices[RING_B]["lost"]) == (50, 10)


def test_a_fleet_that_was_away_gets_what_was_published_meanwhile(broker: LocalBroker, tmp_path: Path) -> None:
    url = broker.url("fleet")
    fleet_db = tmp_path / "fleet.db"

    async def first_run(subscriber: FleetSubscriber) -> None:
        return None  # subscribes with a persistent session, then goes away

    async def publish_while_away() -> None:
        bridge = mqtt_sink(url, tmp_path / "bridge.db")
        await bridge.open()
        await bridge.write(records(range(0, 250), device=RING_A))
        await bridge.close()  # a clean stop publishes what is stored (within its drain time)
        assert bridge.totals.records == 250

    async def second_run(subscriber: FleetSubscriber) -> None:
        await wait_until(subscriber, lambda s: s.records == 250)

    asyncio.run(run_fleet(url, [f"sqlite:{fleet_db}"], first_run))
    asyncio.run(publish_while_away())
    asyncio.run(run_fleet(url, [f"sqlite:{fleet_db}"], second_run))
    assert [r.seq for r in stored_records(fleet_db)] == list(range(250))
