"""The virtual board's peripheral, seen through bleak and the Bumble backend on the virtual air (one process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

from wedge.ble_spec import ATT_MTU_MAX
from wedge.boards import load
from wedge.edge.bridge.bumble_backend import BleakClientBumble, BleakScannerBumble, BumbleAdapter
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import (
    ATT_ERROR_BAD_PARAMETER,
    ATT_ERROR_UNKNOWN_OPCODE,
    EpochSpan,
    backfill_command,
    backfill_epoch_command,
    decode_status,
    set_rate_command,
    stop_command,
)
from wedge.firmware.protocol.ble_records import FrameReader, Record, encode_record
from wedge.firmware.protocol.heart_rate import decode_heart_rate
from wedge.firmware.virtual.always_on import open_board_engine
from wedge.firmware.virtual.ble.air import VirtualAir, transport_spec
from wedge.firmware.virtual.ble.device import BleDevice, BleDeviceOptions
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.ble.ring_buffer import RecordRing
from wedge.samples import sample_path


class Collector:
    """Records from the notifications, with a wait on how many arrived."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.records: list[Record] = []
        self.frames: list[bytes] = []
        self.errors = 0
        self._changed = asyncio.Event()

    def __call__(self, _char: object, data: bytearray) -> None:
        self.frames.append(bytes(data))
        decoded = self.reader.feed(data)
        self.errors += len(decoded.errors)
        self.records.extend(decoded.records)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Record]], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.records):
                self._changed.clear()
                await self._changed.wait()


Scenario = Callable[[BleDevice, BleakClient], Awaitable[None]]


def run_with_device(scenario: Scenario, *, options: BleDeviceOptions, board: str = "ring-nrf52840",
                    requested_mtu: int = ATT_MTU_MAX) -> None:
    async def main() -> None:
        air = VirtualAir()
        spec = transport_spec(await air.serve(0))
        profile = load(board)
        engine, model_id = open_board_engine(profile, sample_path("ppg_quality"))
        device = BleDevice(profile, engine, model_id, spec, options)
        adapter = BumbleAdapter(spec, requested_mtu=requested_mtu)
        try:
            info = await device.start()
            found = await BleakScanner.find_device_by_name(info.name, timeout=10, backend=BleakScannerBumble,
                                                           bumble={"adapter": adapter})
            assert found is not None and found.address == info.address
            # The ring's profile needs an encrypted, bonded link: pair (Just Works) while connecting.
            async with BleakClient(found, backend=BleakClientBumble, bumble={"adapter": adapter}, pair=True) as client:
                await scenario(device, client)
        finally:
            await device.close()
            engine.close()
            await adapter.close()
            await air.close()

    asyncio.run(main())


def test_a_ring_serves_device_information_battery_heart_rate_and_the_wedge_stream() -> None:
    async def scenario(device: BleDevice, client: BleakClient) -> None:
        services = {s.uuid for s in client.services}
        assert {ids.DEVICE_INFORMATION_SERVICE, ids.BATTERY_SERVICE, ids.HEART_RATE_SERVICE,
                ids.WEDGE_STREAM_SERVICE} <= services
        # The serial number is the device id the stream's status names, not the advertised name.
        assert bytes(await client.read_gatt_char(ids.SERIAL_NUMBER)) == f"{device.device_id:016x}".encode()
        status = decode_status(await client.read_gatt_char(ids.WEDGE_STATUS))
        assert (status.device_id, status.epoch) == (device.device_id, device.ring.epoch)
        assert bytes(await client.read_gatt_char(ids.MODEL_NUMBER)) == b"ring-nrf52840"
        assert (await client.read_gatt_char(ids.BATTERY_LEVEL))[0] == 100
        assert client.mtu_size == 247  # the ring's profile MTU, negotiated down from the central's 517

    run_with_device(scenario, options=BleDeviceOptions(name="ring-a", rate_hz=10))


def test_records_stream_in_order_and_a_backfill_resends_buffered_ones_flagged() -> None:
    async def scenario(device: BleDevice, client: BleakClient) -> None:
        collector = Collector()
        await client.start_notify(ids.WEDGE_RECORDS, collector)
        await collector.wait_for(lambda r: len(r) >= 20)
        live = [r.seq for r in collector.records]
        assert live == list(range(live[0], live[0] + len(live)))
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, backfill_command(0, 5), response=True)
        await collector.wait_for(lambda r: sum(x.backfill for x in r) >= 5)
        assert sorted(r.seq for r in collector.records if r.backfill) == [0, 1, 2, 3, 4]
        status = decode_status(await client.read_gatt_char(ids.WEDGE_STATUS))
        assert status.streaming and status.oldest_seq == 0 and status.next_seq >= live[-1] + 1
        assert status.model_id == device.model_id and status.rate_hz == pytest.approx(50.0)

    run_with_device(scenario, options=BleDeviceOptions(name="ring-b", rate_hz=50))


def test_records_of_an_earlier_boot_are_backfilled_by_naming_their_epoch(tmp_path: Path) -> None:
    before = RecordRing(100, tmp_path)
    for seq in range(6):
        before.append(seq, encode_record(Record(seq, seq, 9, epoch=before.epoch)))
    before.close()

    async def scenario(device: BleDevice, client: BleakClient) -> None:
        status = decode_status(await client.read_gatt_char(ids.WEDGE_STATUS))
        assert status.epoch == before.epoch + 1 and status.device_id == before.device_id
        assert status.past_epochs == (EpochSpan(before.epoch, 0, 6),)
        collector = Collector()
        await client.start_notify(ids.WEDGE_RECORDS, collector)
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, backfill_epoch_command(before.epoch, 2), response=True)
        await collector.wait_for(lambda r: sum(x.backfill for x in r) >= 4)
        assert sorted((r.epoch, r.seq) for r in collector.records if r.backfill) == [(before.epoch, s) for s in
                                                                                     range(2, 6)]
        assert all(r.epoch == status.epoch for r in collector.records if not r.backfill)

    run_with_device(scenario, options=BleDeviceOptions(name="ring-h", rate_hz=20, state_dir=tmp_path))


def test_stop_pauses_the_stream_and_rate_changes_the_record_rate() -> None:
    async def scenario(device: BleDevice, client: BleakClient) -> None:
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, set_rate_command(20.0), response=True)
        assert device.loop.rate_hz == pytest.approx(20.0)
        collector = Collector()
        await client.start_notify(ids.WEDGE_RECORDS, collector)
        await collector.wait_for(lambda r: len(r) >= 3)
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, stop_command(), response=True)
        assert not decode_status(await client.read_gatt_char(ids.WEDGE_STATUS)).streaming

    run_with_device(scenario, options=BleDeviceOptions(name="ring-c", rate_hz=5))


@pytest.mark.parametrize(("command", "code"), [(b"", ATT_ERROR_UNKNOWN_OPCODE), (b"\x7f", ATT_ERROR_UNKNOWN_OPCODE),
                                               (b"\x03\x00", ATT_ERROR_BAD_PARAMETER),
                                               (b"\x04\x09\x00\x00\x00\x01\x00\x00\x00", ATT_ERROR_BAD_PARAMETER)])
def test_bad_control_point_writes_are_refused_with_an_att_error(command: bytes, code: int) -> None:
    async def scenario(_device: BleDevice, client: BleakClient) -> None:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, command, response=True)
        assert refused.value.code == code

    run_with_device(scenario, options=BleDeviceOptions(name="ring-d", rate_hz=1))


def test_at_the_minimum_mtu_records_are_fragmented_and_reassembled() -> None:
    async def scenario(_device: BleDevice, client: BleakClient) -> None:
        assert client.mtu_size == 23
        collector = Collector()
        await client.start_notify(ids.WEDGE_RECORDS, collector)
        await collector.wait_for(lambda r: len(r) >= 5)
        assert all(len(frame) <= 20 for frame in collector.frames)
        assert len(collector.frames) > len(collector.records) and collector.errors == 0

    run_with_device(scenario, options=BleDeviceOptions(name="ring-e", rate_hz=20), requested_mtu=23)


def test_the_heart_rate_measurement_reports_a_pulse_from_the_replayed_ppg() -> None:
    async def scenario(_device: BleDevice, client: BleakClient) -> None:
        values: asyncio.Queue[bytes] = asyncio.Queue()
        await client.start_notify(ids.HEART_RATE_MEASUREMENT, lambda _c, data: values.put_nowait(bytes(data)))
        measurement = decode_heart_rate(await asyncio.wait_for(values.get(), 5.0))
        assert 40 <= measurement.bpm <= 180 and measurement.contact is not None

    run_with_device(scenario, options=BleDeviceOptions(name="ring-f", rate_hz=5))


def test_the_link_model_limits_throughput_to_what_the_connection_events_carry() -> None:
    # 1 packet per 50 ms event at MTU 23: 20 notifications/s, far below the 200 records/s produced.
    link = LinkModel(conn_interval_ms=50.0, packets_per_event=1, att_mtu=23)

    async def scenario(device: BleDevice, client: BleakClient) -> None:
        collector = Collector()
        loop = asyncio.get_running_loop()
        await client.start_notify(ids.WEDGE_RECORDS, collector)
        start = loop.time()
        await collector.wait_for(lambda r: len(collector.frames) >= 10)
        assert loop.time() - start >= 9 * 0.05
        assert device.ring.next_seq > len(collector.records)

    run_with_device(scenario, options=BleDeviceOptions(name="ring-g", rate_hz=200, link=link), requested_mtu=23)


def test_a_board_without_a_radio_is_refused() -> None:
    board = replace(load("ring-nrf52840"), ble=None)
    engine, model_id = open_board_engine(board, sample_path("ppg_quality"))
    with engine, pytest.raises(VirtualBoardError, match="no BLE"):
        BleDevice(board, engine, model_id, "tcp-client:127.0.0.1:1")
