"""The virtual board's BLE peripheral: a Bumble device advertising the board, serving its GATT database and
streaming the always-on loop's records through the link model, behind the Security Manager its profile asks for
(pairing, bonds in the state folder, encrypted-only attributes, a private address once bonded).

`run_ble_device` is the entry point the virtual board calls for `--ble`; `BleDevice` is the same thing as an
object, for callers that also inject faults (disconnect, go silent, drop or garble notifications) or press its
button.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.transport import open_transport

from wedge.ble_spec import static_random_address
from wedge.boards import Board
from wedge.errors import first_line
from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import (
    ATT_ERROR_BAD_PARAMETER,
    ATT_ERROR_UNKNOWN_OPCODE,
    ControlOpcode,
    StreamStatus,
    decode_command,
    encode_status,
)
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_model_info import ModelInfo, decode_page_command, encode_model_info
from wedge.firmware.protocol.ble_records import Record, encode_record
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement, encode_heart_rate, rr_units
from wedge.firmware.virtual.always_on import AlwaysOnLoop, WindowResult, file_model_info, open_board_engine
from wedge.firmware.virtual.ble.advertising import ADVERTISING_INTERVAL_MS, Advertiser
from wedge.firmware.virtual.ble.gatt_services import DeviceInformation, build_database
from wedge.firmware.virtual.ble.link_model import LinkModel
from wedge.firmware.virtual.ble.ring_buffer import RecordRing
from wedge.firmware.virtual.ble.security import Event, RingSecurity
from wedge.firmware.virtual.ble.streamer import RecordStreamer, StreamFaults
from wedge.runtime.engines import Engine

# 60,000 records: 20 minutes at 50 records/s, 4 hours at one record per 4 s PPG window.
DEFAULT_RING_RECORDS: Final[int] = 60_000
HEART_RATE_PERIOD_S: Final[float] = 1.0
# A virtual battery drains 1% every 3 minutes (a ring lasts about 5 days at ~1 mA; this just shows movement).
BATTERY_DRAIN_PERIOD_S: Final[float] = 180.0
FIRMWARE_REVISION: Final[str] = "wedge-virtual-1"
LEGACY_ADVERTISING_BYTES: Final[int] = 31
# Profile service names to their 16-bit SIG numbers, for the advertising data.
_ADVERTISED_16_BIT: Final[dict[str, int]] = {"heart_rate": 0x180D, "battery": 0x180F, "device_information": 0x180A}

logger = logging.getLogger(__name__)


def static_address(device_id: int) -> str:
    """A static random address derived from the device id: the same board keeps its address across restarts,
    and two boards with the same name still have two addresses."""
    return static_random_address(hashlib.sha256(device_id.to_bytes(8, "little")).digest())


@dataclass(frozen=True)
class BleDeviceOptions:
    """How the peripheral runs; None picks the board's default."""

    name: str | None = None                 # advertised name (default: the board's BLE name prefix)
    device_id: int | None = None            # the hardware id (default: kept in state_dir, random without one)
    link: LinkModel | None = None           # default: the board's interval and MTU, link model on
    rate_hz: float | None = None            # records per second (default: one per model window)
    ring_records: int = DEFAULT_RING_RECORDS
    state_dir: Path | None = None           # keeps the device id, the epoch and the record buffer across boots
    seed: int = 0
    smp_handler: Callable[[bytes], bytes | None] | None = None  # the board's SMP server, for the SMP service
    on_event: Event | None = None           # what the ring's display shows and how pairings end (JSON-ready)


@dataclass(frozen=True)
class BleDeviceInfo:
    """What a started device announces."""

    name: str
    address: str                  # what it advertises now: a resolvable private address once bonded
    services: tuple[str, ...]
    model_id: int
    boot_count: int
    next_seq: int
    device_id: int
    epoch: int
    identity_address: str = ""    # its static identity address (what a bonded central resolves `address` to)
    security: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "identity_address": self.identity_address,
                "services": list(self.services), "model_id": self.model_id, "boot_count": self.boot_count,
                "next_seq": self.next_seq, "device_id": f"{self.device_id:016x}", "epoch": self.epoch,
                "security": self.security}


@dataclass
class _Battery:
    level_percent: int = 100
    task: asyncio.Task[None] | None = field(default=None)


class BleDevice:
    """A running virtual BLE peripheral for one board; `start`, then `close`."""

    def __init__(self, board: Board, engine: Engine, model_id: int, transport_spec: str,
                 options: BleDeviceOptions | None = None, model_info: ModelInfo | None = None) -> None:
        if board.ble is None:
            raise VirtualBoardError(f"board {board.name} has no BLE radio in its profile")
        self.board = board
        self.options = options or BleDeviceOptions()
        self.name = self.options.name or board.ble.name_prefix
        self.model_id = model_id
        # What the model's manifest says (served on the model info characteristic); None: not served.
        self.model_info = model_info
        self._info_pages: dict[int, int] = {}  # connection handle -> first label its next read starts from
        self.link = self.options.link or LinkModel.for_board(board)
        self.faults = StreamFaults()
        self.loop = AlwaysOnLoop(board, engine, rate_hz=self.options.rate_hz, seed=self.options.seed)
        # Building the ring is the stream's boot: a new epoch, written to the state folder before any record.
        self.ring = RecordRing(self.options.ring_records, self.options.state_dir, device_id=self.options.device_id)
        self.device_id = self.ring.device_id
        self.security = RingSecurity(board.ble.security, self.options.state_dir, static_address(self.device_id),
                                     self.options.on_event)
        self._transport_spec = transport_spec
        self._transport: Any = None
        self._device: Device | None = None
        self._streamer: RecordStreamer | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._battery = _Battery()
        self._heart_rate_char: Any = None
        self._battery_char: Any = None
        self._smp: Any = None
        self._advertiser: Advertiser | None = None

    @property
    def address(self) -> str:
        """The address on the air now (the identity address until it advertises)."""
        return str(self._advertiser.address if self._advertiser is not None else self.security.identity)

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> BleDeviceInfo:
        """Open the HCI transport, power on, register the GATT database, advertise and start the loop."""
        assert self.board.ble is not None
        try:
            self._transport = await open_transport(self._transport_spec)
        except Exception as exc:
            raise VirtualBoardError(f"cannot open the BLE transport {self._transport_spec}: {first_line(exc)}") from exc
        device = Device.with_hci(self.name, self.security.identity, self._transport.source, self._transport.sink)
        device.gatt_server.max_mtu = self.link.att_mtu
        self.security.attach(device)
        # The serial number is the device id, as a ring's firmware prints its FICR id: a phone sees what the
        # stream's status names.
        info = DeviceInformation("wedge (virtual board)", self.board.name, f"{self.device_id:016x}",
                                 self.board.mcu, FIRMWARE_REVISION)
        cccd_value = device.gatt_server.make_descriptor_value
        database = build_database(self.board.ble.services, info, read_battery=self._read_battery,
                                  read_status=self._read_status, write_control=self._write_control,
                                  guard=self.security, cccd_value=cccd_value,
                                  model_info=None if self.model_info is None else (self._read_model_info,
                                                                                   self._write_model_info_page))
        device.add_services(list(database.services))
        if "smp" in self.board.ble.services and self.options.smp_handler is not None:
            from wedge.firmware.virtual.ble.smp_service import SmpGattService, smp_access

            self._smp = SmpGattService(self.options.smp_handler, self.link, self.security,
                                       smp_access(self.security), cccd_value)
            device.add_service(self._smp.service)
            self._smp.attach(device)
        self._heart_rate_char = database.heart_rate
        self._battery_char = database.battery
        self._streamer = RecordStreamer(device, database.records, self.ring, self.link, self.faults)
        device.on("characteristic_subscription", self._streamer.subscribe_events())
        device.on("connection", self._on_connection)
        self._device = device
        self._advertiser = Advertiser(device, self.security, self._advertising_data(), self._scan_response(),
                                      ADVERTISING_INTERVAL_MS)
        try:
            await device.power_on()
            await self._advertiser.start()
        except Exception as exc:
            await self.close()
            raise VirtualBoardError(f"the BLE controller at {self._transport_spec} did not start: "
                                    f"{first_line(exc)}") from exc
        self._tasks.append(asyncio.create_task(self.loop.run(self._on_window, self._stop), name="always-on"))
        if self._heart_rate_char is not None:
            self._tasks.append(asyncio.create_task(self._heart_rate_loop(), name="heart-rate"))
        if self._battery_char is not None:
            self._tasks.append(asyncio.create_task(self._battery_loop(), name="battery"))
        return BleDeviceInfo(self.name, self.address, self.board.ble.services, self.model_id, self.ring.boot_count,
                             self.ring.next_seq, self.device_id, self.ring.epoch, str(self.security.identity),
                             self.security.describe())

    async def close(self) -> None:
        """Stop the loop, keep the record buffer, and leave the air (connected hosts see the link time out)."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._advertiser is not None:
            await self._advertiser.stop()
        if self._streamer is not None:
            self._streamer.close()
        if self._smp is not None:
            self._smp.close()
        self.ring.close()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
            self._transport = None

    # -- faults ------------------------------------------------------------------------------------------

    async def disconnect_all(self) -> int:
        """Drop every connection from the device side (as a board that resets its radio); returns how many."""
        assert self._device is not None
        connections = list(self._device.connections.values())
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.disconnect()
        return len(connections)

    async def unpair_all(self) -> int:
        """Erase every bond (the Bluetooth settings' factory reset) and drop the bonded links, as bt_unpair
        does; how many bonds there were."""
        count = self.security.forget_all()
        await self.disconnect_all()
        return count

    @property
    def connections(self) -> int:
        return 0 if self._device is None else len(self._device.connections)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name, "address": self.address, "identity_address": str(self.security.identity),
            "security": self.security.describe(), "device_id": f"{self.device_id:016x}",
            "epoch": self.ring.epoch, "connections": self.connections,
            "subscribers": 0 if self._streamer is None else self._streamer.subscribers,
            "oldest_seq": self.ring.oldest_seq, "next_seq": self.ring.next_seq, "rate_hz": self.loop.rate_hz,
            "epochs": [span.to_dict() for span in self.ring.epochs()],
            "frames_sent": 0 if self._streamer is None else self._streamer.frames_sent,
            "silent": self.faults.silent, "battery_percent": self._battery.level_percent,
        }

    # -- GATT callbacks ----------------------------------------------------------------------------------

    def _advertising_data(self) -> bytes:
        fields = [
            (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, BR/EDR not supported
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()[:26]),
        ]
        # As Zephyr's peripheral_hr does (BT_DATA_UUID16_ALL): the standard services a phone filters scans by,
        # when they fit beside the name in the 31 bytes.
        assert self.board.ble is not None
        sig = b"".join(struct.pack("<H", number) for service, number in _ADVERTISED_16_BIT.items()
                       if service in self.board.ble.services)
        if sig and len(bytes(AdvertisingData(fields))) + 2 + len(sig) <= LEGACY_ADVERTISING_BYTES:
            fields.append((AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, sig))
        return bytes(AdvertisingData(fields))

    def _scan_response(self) -> bytes:
        # A 128-bit UUID takes 18 of the 31 advertising bytes: it goes in the scan response, next to the name.
        return bytes(AdvertisingData([
            (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(ids.WEDGE_STREAM_SERVICE))),
        ]))

    def _on_connection(self, connection: Connection) -> None:
        streamer = self._streamer
        peer = connection.peer_address
        logger.info("BLE: %s connected", peer)

        def gone(reason: int) -> None:
            logger.info("BLE: %s disconnected (%s)", peer, hci.HCI_Constant.error_name(reason))
            if streamer is not None:
                streamer.drop(connection)
            self._info_pages.pop(connection.handle, None)

        connection.on("disconnection", gone)

    def _read_battery(self, _connection: Any) -> bytes:
        return bytes([self._battery.level_percent])

    def _read_status(self, connection: Any) -> bytes:
        assert self._streamer is not None
        return encode_status(StreamStatus(
            streaming=self._streamer.streaming(connection), oldest_seq=self.ring.oldest_seq,
            next_seq=self.ring.next_seq, capacity_records=self.ring.capacity,
            rate_mhz=max(round(self.loop.rate_hz * 1000), 1), model_id=self.model_id,
            boot_count=self.ring.boot_count, device_id=self.device_id, epoch=self.ring.epoch,
            past_epochs=self.ring.past_epochs(),
        ))

    def _read_model_info(self, connection: Any) -> bytes:
        assert self.model_info is not None
        return encode_model_info(self.model_info, self._info_pages.get(connection.handle, 0))

    def _write_model_info_page(self, connection: Any, value: bytes) -> None:
        assert self.model_info is not None
        try:
            first = decode_page_command(value)
        except MalformedPacket as exc:
            raise ATT_Error(ATT_ERROR_BAD_PARAMETER, message=str(exc)) from exc
        if first > len(self.model_info.labels):
            raise ATT_Error(ATT_ERROR_BAD_PARAMETER, message=f"label {first} of {len(self.model_info.labels)}")
        self._info_pages[connection.handle] = first

    def _write_control(self, connection: Any, value: bytes) -> None:
        assert self._streamer is not None
        try:
            command = decode_command(value)
        except MalformedPacket as exc:
            known = len(value) > 0 and value[0] in {op.value for op in ControlOpcode}
            raise ATT_Error(ATT_ERROR_BAD_PARAMETER if known else ATT_ERROR_UNKNOWN_OPCODE, message=str(exc)) from exc
        if command.opcode is ControlOpcode.START:
            self._streamer.set_streaming(connection, True)
        elif command.opcode is ControlOpcode.STOP:
            self._streamer.set_streaming(connection, False)
        elif command.opcode is ControlOpcode.SET_RATE:
            self.loop.set_rate(command.rate_hz)
        elif command.opcode in (ControlOpcode.BACKFILL, ControlOpcode.BACKFILL_EPOCH):
            epoch = self.ring.epoch if command.epoch is None else command.epoch
            self._streamer.request_backfill(connection, epoch, command.first_seq, command.end_seq)

    # -- producers ---------------------------------------------------------------------------------------

    def _on_window(self, result: WindowResult) -> None:
        seq = self.ring.take_seq()
        encoded = encode_record(Record(seq, result.t_device_us, self.model_id, result.outputs, epoch=self.ring.epoch))
        self.ring.append(seq, encoded)
        if self._streamer is not None:
            self._streamer.publish(encoded)

    async def _heart_rate_loop(self) -> None:
        assert self._device is not None
        while not self._stop.is_set():
            estimate = self.loop.heart_rate()
            if estimate is not None and not self.faults.silent:
                value = encode_heart_rate(HeartRateMeasurement(
                    estimate.bpm, contact=estimate.contact,
                    rr_intervals_1024=(rr_units(estimate.rr_interval_s),) if estimate.contact else (),
                ))
                with contextlib.suppress(Exception):
                    await self._device.notify_subscribers(self._heart_rate_char, value)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), HEART_RATE_PERIOD_S)

    async def _battery_loop(self) -> None:
        assert self._device is not None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), BATTERY_DRAIN_PERIOD_S)
            if self._stop.is_set():
                return
            self._battery.level_percent = max(self._battery.level_percent - 1, 1)
            with contextlib.suppress(Exception):
                await self._device.notify_subscribers(self._battery_char)


async def run_ble_device(
    board: Board,
    model: Engine | str | Path | bytes,
    *,
    transport_spec: str,
    options: BleDeviceOptions | None = None,
    model_id: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[BleDevice, BleDeviceInfo], None] | None = None,
    model_info: ModelInfo | None = None,
) -> None:
    """Run the board's BLE peripheral until `stop` is set (or the task is cancelled).

    model: an open Engine (the board's booted TFLM runtime; pass its `model_id`), or a model file or bytes,
    opened in TFLite-Micro with the board's arena (.tflite) or onnxruntime (.onnx).
    transport_spec: a Bumble HCI transport, e.g. `tcp-client:127.0.0.1:PORT` for the virtual air.
    on_ready: called once advertising, with the device (for faults and status) and what it announced.
    model_info: the model's name, version, labels and unit (the manifest's), served to hosts that ask.
    """
    owned: Engine | None = None
    if isinstance(model, Engine):
        engine = model
        if model_id is None:
            raise VirtualBoardError("pass model_id with an open engine (the image's model hash)")
    else:
        engine, derived_id = open_board_engine(board, model)
        owned = engine
        model_id = derived_id if model_id is None else model_id
        model_info = model_info or file_model_info(model, model_id)
    device = BleDevice(board, engine, model_id, transport_spec, options, model_info)
    try:
        info = await device.start()
        if on_ready is not None:
            on_ready(device, info)
        await (stop or asyncio.Event()).wait()
    finally:
        await device.close()
        if owned is not None:
            owned.close()
