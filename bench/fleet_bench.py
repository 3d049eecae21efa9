"""Benchmark of the fleet path: the bridge's MQTT sink -> a real broker (mosquitto, else amqtt) -> `wedge fleet`
(its own process) into SQLite.

Figures: records/s end to end for 1 and 50 simulated devices, one message per batch vs one per record, the time a
broker outage takes to recover from, bytes per record on the wire (mosquitto's $SYS byte counters: MQTT framing
included, TCP/IP headers not), and one virtual board over the virtual BLE air end to end. The simulated devices
are light-weight generators writing batches of records into the bridge's MQTT sink in this process (the sink
path the bridge's SinkRunner drives, SQLite outbox included), not 50 BLE board processes.
`python bench/fleet_bench.py [--quick]` prints one JSON summary on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiomqtt

from wedge.edge.bridge.process import BridgeProcess
from wedge.edge.bridge.sinks.mqtt import BATCH_RECORDS, MqttSink
from wedge.edge.bridge.sinks.mqtt_address import parse_mqtt_url
from wedge.edge.bridge.sinks.sqlite import SqliteSink, stored_records
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.edge.fleet.broker import LocalBroker
from wedge.edge.fleet.process import FleetProcess
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess

# The BLE bridge benchmark's tiny linear model: a board process can make hundreds of records a second.
sys.path.insert(0, str(Path(__file__).parent))
from bridge_bench import light_model  # noqa: E402

# A group commit of the bridge's SinkRunner every 50 ms at 1,000 records/s: batches of about this many records.
SIM_BATCH: int = 50


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sim_records(device: str, first: int, count: int) -> list[StreamRecord]:
    """What a ring's wedge stream record becomes: 3 int8 logits of the PPG-quality model."""
    now_us = time.time_ns() // 1000
    return [StreamRecord(device, 1, seq, 20_000 * seq, now_us, "wedge", 0x5EED1234, (0.125, -1.5, 2.25),
                         {"outputs": [{"dtype": "int8", "raw": [1, -12, 18], "scale": 0.125, "zero_point": 0}]},
                         name=f"ring-{device[-3:]}") for seq in range(first, first + count)]


async def sys_bytes(broker: LocalBroker) -> dict[str, int]:
    """mosquitto's counters of bytes received and sent since it started (published every second)."""
    if broker.kind != "mosquitto":
        return {}
    found: dict[str, int] = {}
    async with parse_mqtt_url(broker.url("x")).client("bench-sys") as client:
        await client.subscribe("$SYS/broker/bytes/+")
        async with asyncio.timeout(5):
            async for message in client.messages:
                found[str(message.topic).rsplit("/", 1)[-1]] = int(bytes(message.payload))  # type: ignore[arg-type]
                if len(found) == 2:
                    return found
    return found


class Simulation:
    """`devices` simulated rings writing into one bridge MQTT sink (an SQLite outbox in `work`)."""

    def __init__(self, url: str, work: Path, devices: int, *, batch_records: int = BATCH_RECORDS) -> None:
        self.devices = [f"{0xF1EE7000000 + i:016x}" for i in range(devices)]
        self.sink = MqttSink(parse_mqtt_url(url), SqliteSink(work / "bridge.db"), batch_records=batch_records)
        self.written = 0

    async def write(self, rounds: int, *, rate_hz: float | None = None, first_round: int = 0) -> None:
        """`rounds` batches of SIM_BATCH records per device; paced at `rate_hz` records/s per device when given."""
        started = time.monotonic()
        for round_ in range(rounds):
            for device in self.devices:
                await self.sink.write(sim_records(device, (first_round + round_) * SIM_BATCH, SIM_BATCH))
                self.written += SIM_BATCH
            if rate_hz is not None:
                due = started + (round_ + 1) * SIM_BATCH / rate_hz
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing the simulated devices


async def wait_fleet(fleet: FleetProcess, at_least: int, timeout_s: float = 300.0) -> dict[str, Any]:
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: fleet.wait_status(f"{at_least} records", lambda s: s["records"] >= at_least, timeout_s))


async def throughput(broker: LocalBroker, work: Path, devices: int, per_device: int, *,
                     batch_records: int = BATCH_RECORDS) -> dict[str, Any]:
    """Records/s from the first write into the sink to the last record committed in the fleet's database."""
    work.mkdir(parents=True)
    prefix = f"bench-{devices}-{batch_records}"
    url = broker.url(prefix)
    fleet = FleetProcess(url, [f"sqlite:{work / 'fleet.db'}"], work / "fleet.log")
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: fleet.wait_status("connected", lambda s: s["connected"]))
        before = await sys_bytes(broker)
        simulation = Simulation(url, work, devices, batch_records=batch_records)
        await simulation.sink.open()
        started = time.monotonic()
        await simulation.write(per_device // SIM_BATCH)
        written_s = time.monotonic() - started
        status = await wait_fleet(fleet, simulation.written)
        elapsed_s = time.monotonic() - started
        totals = simulation.sink.totals
        await simulation.sink.close()
        await asyncio.sleep(1.5)  # mosquitto publishes its byte counters once a second: wait for a fresh one
        after = await sys_bytes(broker)
    finally:
        fleet.terminate()
    result: dict[str, Any] = {
        "devices": devices, "records": simulation.written, "batch_records": batch_records,
        "records_per_s_end_to_end": round(simulation.written / elapsed_s),
        "records_per_s_into_outbox": round(simulation.written / written_s),
        "messages": totals.messages, "records_per_message": round(totals.records / max(totals.messages, 1), 1),
        "payload_bytes_per_record": round(totals.payload_bytes / max(totals.records, 1), 1),
        "fleet_duplicates": status["duplicates"],
    }
    if before and after:
        result["wire_bytes_per_record_bridge_to_broker"] = round(
            (after["received"] - before["received"]) / simulation.written, 1)
        result["wire_bytes_per_record_broker_to_fleet"] = round((after["sent"] - before["sent"]) / simulation.written, 1)
    log(f"  {devices} devices, batches of {batch_records}: {result['records_per_s_end_to_end']} records/s end to end")
    return result


async def outage(broker: LocalBroker, work: Path, devices: int, rate_hz: float, outage_s: float) -> dict[str, Any]:
    """A broker stopped for `outage_s` while `devices` stream at `rate_hz` each: how long after it is back the
    bridge reconnects, and the fleet holds everything stored."""
    work.mkdir(parents=True)
    url = broker.url("bench-outage")
    fleet = FleetProcess(url, [f"sqlite:{work / 'fleet.db'}"], work / "fleet.log")
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, lambda: fleet.wait_status("connected", lambda s: s["connected"]))
        simulation = Simulation(url, work, devices)
        await simulation.sink.open()
        rounds_per_s = rate_hz / SIM_BATCH
        await simulation.write(round(2 * rounds_per_s), rate_hz=rate_hz)
        broker.stop()
        await simulation.write(round(outage_s * rounds_per_s), rate_hz=rate_hz, first_round=round(2 * rounds_per_s))
        backlog = simulation.sink.buffered
        await loop.run_in_executor(None, broker.start)
        back = time.monotonic()
        while simulation.sink.state()["broker"] != "connected":
            await asyncio.sleep(0.02)  # sampling the sink's state for the measurement
        reconnected_s = time.monotonic() - back
        while simulation.sink.buffered:
            await asyncio.sleep(0.02)
        published_s = time.monotonic() - back
        await wait_fleet(fleet, simulation.written)
        fleet_s = time.monotonic() - back
        await simulation.sink.close()
        stored = len(stored_records(work / "fleet.db"))
    finally:
        fleet.terminate()
    result = {"devices": devices, "rate_hz_per_device": rate_hz, "outage_s": outage_s, "backlog_records": backlog,
              "broker_back_to_all_devices_reconnected_s": round(reconnected_s, 2),
              "broker_back_to_backlog_published_s": round(published_s, 2),
              "broker_back_to_fleet_complete_s": round(fleet_s, 2), "fleet_stored": stored,
              "written": simulation.written}
    log(f"  outage of {outage_s:g} s, {backlog} records buffered: published {published_s:.2f} s after the broker "
        f"was back, all in the fleet after {fleet_s:.2f} s")
    return result


def ble_end_to_end(broker: LocalBroker, work: Path, rate_hz: float, seconds: float) -> dict[str, Any]:
    """One virtual board over the virtual BLE air -> `wedge bridge` (MQTT sink) -> broker -> `wedge fleet`."""
    work.mkdir(parents=True)
    url = broker.url("bench-ble")
    air = AirProcess(work)
    board = bridge = fleet = None
    try:
        board = BleBoardProcess("ring-nrf52840", light_model(work / "linear.onnx"), air.spec, work, name="bench-ring",
                                extra_args=["--rate-hz", str(rate_hz)])
        fleet = FleetProcess(url, [f"sqlite:{work / 'fleet.db'}"], work / "fleet.log")
        fleet.wait_status("connected", lambda s: s["connected"])
        bridge = BridgeProcess(["bench-ring"], [url, f"sqlite:{work / 'bridge.db'}"], work / "bridge.log",
                               transport=air.spec)
        first = fleet.wait_status("records arriving", lambda s: s["records"] > rate_hz)
        started, counted = time.monotonic(), first["records"]
        last = fleet.wait_status(f"{seconds:g} s", lambda s: time.monotonic() - started >= seconds)
        rate = (last["records"] - counted) / (time.monotonic() - started)
    finally:
        for process in (bridge, fleet, board):
            if process is not None:
                process.terminate()
        air.terminate()
    log(f"  1 virtual board at {rate_hz:g} Hz over BLE: {rate:.0f} records/s at the fleet")
    return {"devices": 1, "board_rate_hz": rate_hz, "records_per_s_at_fleet": round(rate)}


async def run(work: Path, broker: LocalBroker, quick: bool) -> dict[str, Any]:
    per_device_50 = 200 if quick else 1000
    log("throughput (simulated devices into the bridge's MQTT sink):")
    one = await throughput(broker, work / "one", 1, 5_000 if quick else 20_000)
    fifty = await throughput(broker, work / "fifty", 50, per_device_50)
    per_record = await throughput(broker, work / "per-record", 1, 1_000 if quick else 3_000, batch_records=1)
    log("broker outage:")
    down = await outage(broker, work / "outage", 50, 10.0, 3.0 if quick else 10.0)
    return {"one_device": one, "fifty_devices": fifty, "one_message_per_record": per_record, "outage": down,
            "batch_vs_per_record_throughput": round(one["records_per_s_end_to_end"] /
                                                    per_record["records_per_s_end_to_end"], 1)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer records and a 3 s outage")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        work = Path(tmp)
        broker = LocalBroker(work / "broker")
        broker.start()
        log(f"broker: {broker.kind} on 127.0.0.1:{broker.port}")
        try:
            summary = asyncio.run(run(work, broker, args.quick))
            log("BLE end to end:")
            summary["ble_one_board"] = ble_end_to_end(broker, work / "ble", 200.0, 5.0 if args.quick else 10.0)
        finally:
            broker.kill()
        summary["broker"] = broker.kind
        summary["simulated_devices"] = ("generators writing batches of records into the bridge's MQTT sink (SQLite "
                                        "outbox included) in the benchmark process, not BLE board processes")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    try:
        main()
    except aiomqtt.MqttError as exc:
        sys.exit(f"error: {exc}")
