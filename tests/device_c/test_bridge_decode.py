"""A stream produced by the C core and one produced by the virtual board's device side decode to the same records in
the bridge: wedge.edge.bridge's WedgeStreamProfile attaches to each (status, subscribe, start, backfill of every
gap, past epoch included) through the same GATT calls, and hands its sinks the same StreamRecords."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.device_c.core import Core
from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.session import DeviceStats, Link, Outlet
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.edge.bridge.wedge_profile import WedgeStreamProfile
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import (
    ATT_ERROR_BAD_PARAMETER,
    ControlOpcode,
    StreamStatus,
    decode_command,
    encode_status,
)
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_records import Output, OutputDType, Record, encode_record
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.ble.ring_buffer import STREAM_FILE, RecordRing
from wedge.firmware.virtual.ble.streamer import RecordStreamer

DEVICE_ID = 0x5EED_0000_C0DE_0015
MODEL_ID = 0x13CAD0AE
MTU = 64
RATE_MHZ = 2000
Notify = Callable[[object, bytearray], None]


def windows(rng: random.Random, count: int) -> list[tuple[int, tuple[Output, ...]]]:
    """What the model produced per window: 3 class scores (float32), or a quantized int8 embedding."""
    made = []
    for _ in range(count):
        if rng.random() < 0.7:
            scores = np.asarray([rng.random() for _ in range(3)], np.float32).tolist()
            outputs: tuple[Output, ...] = (Output(OutputDType.FLOAT32, tuple(scores)),)
        else:
            values = tuple(rng.randrange(-128, 128) for _ in range(rng.randrange(40, 120)))
            outputs = (Output(OutputDType.INT8, values, 0.125, -3),)
        made.append((rng.getrandbits(50), outputs))
    return made


def c_outputs(outputs: tuple[Output, ...]) -> list[tuple[int, bool, float, int, list[float]]]:
    return [(int(o.dtype), o.quantized, o.scale or 0.0, o.zero_point or 0, list(o.values)) for o in outputs]


class _Services:
    def get_service(self, uuid: str) -> object | None:
        return object() if uuid == ids.WEDGE_STREAM_SERVICE else None

    def get_characteristic(self, _uuid: str) -> None:
        return None  # no Device Information serial, no battery


class FakeClient:
    """The bleak client the profile talks to, wired to a device side (C core or virtual board)."""

    address = "C0:DE:00:00:00:15"

    def __init__(self, device: Any) -> None:
        self.device = device
        self.services = _Services()

    async def read_gatt_char(self, uuid: str) -> bytearray:
        assert uuid == ids.WEDGE_STATUS
        return bytearray(self.device.status())

    async def start_notify(self, uuid: str, callback: Notify) -> None:
        assert uuid == ids.WEDGE_RECORDS
        self.device.subscribe(callback)

    async def write_gatt_char(self, uuid: str, data: bytes, response: bool = True) -> None:
        assert uuid == ids.WEDGE_CONTROL_POINT and response
        await self.device.control(bytes(data))


class CDevice:
    """The C core: ring buffer on flash, one stream, frames pumped in 6-packet connection events."""

    def __init__(self, core: Core, seed: int) -> None:
        self.core = core
        self.handle = core.ring_new(4096 * 8, 4096, 4, 400, seed)
        assert core.ring_open(self.handle) == 0
        self.stream: int | None = None
        self.notify: Notify | None = None

    @property
    def epoch(self) -> int:
        return self.core.ring_state(self.handle)["epoch"]

    def reboot(self) -> None:
        assert self.core.ring_open(self.handle) == 0

    async def produce(self, made: list[tuple[int, tuple[Output, ...]]]) -> None:
        for t_us, outputs in made:
            rc, _ = self.core.ring_produce(self.handle, {"t_device_us": t_us, "model_id": MODEL_ID,
                                                         "outputs": c_outputs(outputs)})
            assert rc == 0
        self.pump()

    def status(self) -> bytes:
        if self.stream is None:
            self.stream = self.core.stream_new(self.handle, RATE_MHZ)
        return self.core.stream_status(self.handle, self.stream, DEVICE_ID, MODEL_ID)

    def subscribe(self, callback: Notify) -> None:
        self.notify = callback

    async def control(self, data: bytes) -> None:
        assert self.stream is not None
        rc, att = self.core.stream_control(self.handle, self.stream, data)
        assert rc == 0, f"the C core refused {data.hex()} with ATT error {att:#x}"
        self.pump()

    def pump(self) -> None:
        if self.stream is None or self.notify is None:
            return
        while self.core.stream_pending(self.handle, self.stream):
            rc, _, frames = self.core.stream_pump(self.handle, self.stream, MTU - 3, 6)
            assert rc == 0
            for frame in frames:
                self.notify(None, bytearray(frame))


class _Notifier:
    def __init__(self, device: VirtualDevice) -> None:
        self.device = device

    async def notify_subscriber(self, _connection: object, _characteristic: object, value: bytes) -> None:
        assert self.device.notify is not None
        self.device.notify(None, bytearray(value))


class _Connection:
    handle = 1
    att_mtu = MTU


class VirtualDevice:
    """The virtual board's device side: its RecordRing (state folder, epochs, record log) and RecordStreamer,
    with the status and control point handling of its BLE device."""

    def __init__(self, state_dir: Path, first_epoch: int) -> None:
        self.state_dir = state_dir
        (state_dir / STREAM_FILE).write_text(json.dumps({"epoch": first_epoch - 1, "boot_count": 0}))
        self.ring = RecordRing(1000, state_dir, device_id=DEVICE_ID)
        self.connection = _Connection()
        self.notify: Notify | None = None
        self.streamer: RecordStreamer | None = None

    def reboot(self) -> None:
        self.ring.close()
        self.ring = RecordRing(1000, self.state_dir, device_id=DEVICE_ID)

    async def settle(self) -> None:
        for _ in range(200):  # the streamer's send loop runs its connection events
            await asyncio.sleep(0)

    async def produce(self, made: list[tuple[int, tuple[Output, ...]]]) -> None:
        for t_us, outputs in made:
            seq = self.ring.take_seq()
            encoded = encode_record(Record(seq, t_us, MODEL_ID, outputs, epoch=self.ring.epoch))
            self.ring.append(seq, encoded)
            if self.streamer is not None:
                self.streamer.publish(encoded)
        await self.settle()

    def status(self) -> bytes:
        if self.streamer is None:
            self.streamer = RecordStreamer(_Notifier(self), object(), self.ring,  # type: ignore[arg-type]
                                           LinkModel(packets_per_event=6, att_mtu=MTU, enabled=False))
        streaming = self.streamer.streaming(self.connection)  # type: ignore[arg-type]
        return encode_status(StreamStatus(
            streaming=streaming, oldest_seq=self.ring.oldest_seq, next_seq=self.ring.next_seq,
            capacity_records=self.ring.capacity, rate_mhz=RATE_MHZ, model_id=MODEL_ID,
            boot_count=self.ring.boot_count, device_id=self.ring.device_id, epoch=self.ring.epoch,
            past_epochs=self.ring.past_epochs()))

    def subscribe(self, callback: Notify) -> None:
        assert self.streamer is not None
        self.notify = callback
        self.streamer.on_subscription(self.connection, True)  # type: ignore[arg-type]

    async def control(self, data: bytes) -> None:
        assert self.streamer is not None
        try:
            command = decode_command(data)
        except MalformedPacket:
            raise AssertionError(f"ATT error {ATT_ERROR_BAD_PARAMETER:#x}") from None
        if command.opcode is ControlOpcode.START:
            self.streamer.set_streaming(self.connection, True)  # type: ignore[arg-type]
        elif command.opcode in (ControlOpcode.BACKFILL, ControlOpcode.BACKFILL_EPOCH):
            epoch = self.ring.epoch if command.epoch is None else command.epoch
            self.streamer.request_backfill(self.connection, epoch, command.first_seq,  # type: ignore[arg-type]
                                           command.end_seq)
        await self.settle()

    def close(self) -> None:
        if self.streamer is not None:
            self.streamer.close()
        self.ring.close()


async def bridge_records(device: Any, rng_seed: int) -> tuple[list[StreamRecord], DeviceStats]:
    """A device that made 5 records in its last boot and 15 in this one before the bridge came, then 10 live:
    what the bridge's wedge profile hands its sinks."""
    rng = random.Random(rng_seed)
    await device.produce(windows(rng, 5))
    device.reboot()
    await device.produce(windows(rng, 15))
    emitted: list[StreamRecord] = []

    async def coverage(_device: str, _windows: object) -> Coverage:
        return Coverage()  # fresh sinks: they hold nothing of this device

    stats = DeviceStats("ring")
    link = Link(stats, Outlet(emitted.extend, coverage, lambda _ranges: None))
    profile = WedgeStreamProfile()
    client = FakeClient(device)
    await profile.attach(client, link)  # type: ignore[arg-type]
    await device.produce(windows(rng, 10))
    for _ in range(4):  # the profile asks for one gap at a time
        await profile.maintain(client, link)  # type: ignore[arg-type]
    profile.drain(link)
    return emitted, stats


def comparable(records: list[StreamRecord]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k not in ("received_us", "received")} for r in records]


def test_the_bridge_gets_the_same_records_from_the_c_core_and_the_virtual_board(core: Core) -> None:
    c_device = CDevice(core, seed=15)
    first_epoch = c_device.epoch

    async def both() -> tuple[tuple[list[StreamRecord], DeviceStats], tuple[list[StreamRecord], DeviceStats]]:
        from_c = await bridge_records(c_device, 1)
        with tempfile.TemporaryDirectory() as state:
            virtual = VirtualDevice(Path(state), first_epoch)
            try:
                from_virtual = await bridge_records(virtual, 1)
            finally:
                virtual.close()
        return from_c, from_virtual

    (c_records, c_stats), (v_records, v_stats) = asyncio.run(both())
    assert comparable(c_records) == comparable(v_records)
    assert len(c_records) == 30 and (c_stats.malformed, c_stats.lost) == (0, 0) == (v_stats.malformed, v_stats.lost)
    assert sum(r.backfill for r in c_records) == 20  # the past epoch's 5 and the 15 made before the bridge came
    keys = [(r.device, r.epoch, r.seq) for r in c_records]
    assert sorted(keys) == sorted(set(keys))  # nothing twice
    assert {r.epoch for r in c_records} == {first_epoch, first_epoch + 1}
    assert {r.device for r in c_records} == {f"{DEVICE_ID:016x}"}
    core.drop(c_device.handle)
