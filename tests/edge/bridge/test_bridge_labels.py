"""What a record means, end to end: the ring names its model over BLE, and every sink carries the label,
its score and the model (SQLite's `models` table, JSON lines' `model` lines) under the same field names."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner

from tests.edge.bridge.bridge_harness import CollectingSink, Ticks, run_bridge, start_board
from wedge.boards import load
from wedge.edge.bridge.bumble_backend import BleakClientBumble, BleakScannerBumble, BumbleAdapter
from wedge.edge.bridge.daemon import Bridge
from wedge.edge.bridge.models import NO_VERDICT, read_model_info, verdict
from wedge.edge.bridge.sinks.jsonl import JsonLinesSink
from wedge.edge.bridge.sinks.sqlite import SqliteSink, stored_models, stored_records
from wedge.firmware.protocol.ble_model_info import ModelInfo
from wedge.firmware.virtual.always_on import open_board_engine
from wedge.firmware.virtual.ble.air import VirtualAir, transport_spec
from wedge.firmware.virtual.ble.device import BleDevice, BleDeviceOptions
from wedge.firmware.virtual.processes import AirProcess
from wedge.samples import PPG_QUALITY, sample_path

PPG = ModelInfo(1, "ppg_quality", "1.0.0", PPG_QUALITY.labels)


def test_logits_become_the_class_and_its_probability() -> None:
    said = verdict((2.0, 0.0, -1.0), PPG)
    assert said.label == "good" and said.scores is not None
    assert said.score == pytest.approx(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert sum(said.scores) == pytest.approx(1.0)


def test_probabilities_stay_probabilities_and_a_regression_keeps_its_unit() -> None:
    assert verdict((0.1, 0.2, 0.7), PPG).score == pytest.approx(0.7)
    assert verdict((0.1, 0.2, 0.7), PPG).label == "no contact"
    rate = verdict((71.5,), ModelInfo(2, "hr", labels=(), unit="bpm"))
    assert (rate.label, rate.score, rate.scores) == ("bpm", 71.5, None)
    vad = verdict((0.8,), ModelInfo(3, "vad", labels=("silence", "speech")))
    assert vad.label == "speech" and vad.score == pytest.approx(0.8)


def test_outputs_that_do_not_fit_the_model_or_no_model_say_nothing() -> None:
    assert verdict((1.0, 2.0), PPG) == NO_VERDICT
    assert verdict((1.0, 2.0, 3.0), None) == NO_VERDICT


def test_a_model_with_hundreds_of_labels_is_read_page_by_page_over_ble() -> None:
    labels = tuple(f"a rather long class name, number {i}" for i in range(300))

    async def main() -> ModelInfo | None:
        air = VirtualAir()
        spec = transport_spec(await air.serve(0))
        board = load("ring-nrf52840")
        engine, model_id = open_board_engine(board, sample_path("ppg_quality"))
        info = ModelInfo(model_id, "imagenet-ish", "2.0.0", labels)
        device = BleDevice(board, engine, model_id, spec, BleDeviceOptions(name="many-labels"), info)
        adapter = BumbleAdapter(spec)
        try:
            started = await device.start()
            found = await BleakScanner.find_device_by_name(started.name, timeout=10, backend=BleakScannerBumble,
                                                           bumble={"adapter": adapter})
            assert found is not None
            # The ring serves its model info over an encrypted link only: pair (Just Works) first.
            async with BleakClient(found, backend=BleakClientBumble, bumble={"adapter": adapter},
                                   pair=True) as client:
                first = await read_model_info(client)
                again = await read_model_info(client)  # the page was set back: a second read is whole too
                assert again == first
                return first
        finally:
            await adapter.close()
            await device.close()
            engine.close()
            await air.close()

    read = asyncio.run(main())
    assert read is not None and read.labels == labels and read.name == "imagenet-ish" and read.version == "2.0.0"


def test_the_ring_names_its_model_and_every_sink_carries_label_and_score(air: AirProcess, tmp_path: Path) -> None:
    board = start_board(air, tmp_path / "labels-1", "labels-1", rate_hz=20.0)
    db, lines = tmp_path / "s.db", tmp_path / "out.jsonl"
    collected = CollectingSink()

    async def scenario(_bridge: Bridge, _ticks: Ticks) -> None:
        await collected.wait_for(lambda r: len(r) >= 20)

    try:
        asyncio.run(run_bridge(air.spec, ["labels-1"], [SqliteSink(db), JsonLinesSink(lines), collected], scenario))
    finally:
        board.terminate()
    key = str(board.info["device_id"])
    # The virtual ring replays the scripted day from "at rest": the model, named by the ring, says "good".
    (model,) = stored_models(db)
    assert (model.name, model.labels, model.model_id) == ("ppg_quality", PPG_QUALITY.labels, board.info["model_id"])
    rows = stored_records(db, key)
    assert rows and all(r.label in PPG_QUALITY.labels and 0 < (r.score or 0) <= 1 for r in rows)
    assert sum(r.label == "good" for r in rows) >= 0.8 * len(rows)
    sql = sqlite3.connect(db)
    sql.row_factory = sqlite3.Row
    row = sql.execute("SELECT * FROM records WHERE device = ? ORDER BY seq LIMIT 1", (key,)).fetchone()
    assert datetime.fromisoformat(row["t_device"]).timestamp() == pytest.approx(row["t_device_us"] / 1e6, abs=1e-3)
    assert sum(json.loads(row["scores"])) == pytest.approx(1.0)
    assert {"records_by_received", "records_by_device_time"} <= {
        name for (name,) in sql.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    # JSON lines: a `model` line before the first record of the model, records under SQLite's column names.
    written = [json.loads(line) for line in lines.read_text().splitlines()]
    assert written[0]["kind"] == "model" and written[0]["labels"] == list(PPG_QUALITY.labels)
    records = [w for w in written if w["kind"] == "wedge"]
    assert set(records[0]) == set(row.keys()) | {"model"}
    assert all(r["label"] in PPG_QUALITY.labels for r in records)
    assert {r.label for r in collected.records} <= set(PPG_QUALITY.labels)
