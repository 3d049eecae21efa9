"""The wedge stream's control point commands and status value: how the host steers the stream and reads its state.

Control point (write with response), little-endian:
    0x01 start | 0x02 stop | 0x03 set rate: u32 records per 1000 s (milli-hertz) |
    0x04 backfill: u32 first seq | u32 end seq (exclusive; 0xFFFFFFFF = up to the newest), in the current epoch |
    0x05 backfill epoch: u32 epoch | u32 first seq | u32 end seq, in the named epoch (0xFFFFFFFF = to its end)
A device answers a bad command with ATT error 0x80 (unknown opcode) or 0x81 (bad parameter); a backfill of an
epoch or range it no longer buffers sends nothing (the status says what it holds).

Status (read), version 2, 39 + 12 x n bytes:
    offset  size  field
    0       1     u8  version = 2
    1       1     u8  flags: bit 0 = streaming to this connection
    2       8     u64 device id: the firmware's stable hardware id (nRF52/53: FICR DEVICEID; longer ids folded
                  to 64 bits), never 0; the same over re-flashing and resets. The host keys records by it.
    10      4     u32 epoch: the current boot epoch (never 0; `ble_records` says how it is chosen)
    14      4     u32 oldest seq of the current epoch still buffered (= next seq when none is)
    18      4     u32 next seq of the current epoch
    22      4     u32 buffer capacity in records
    26      4     u32 rate in mHz
    30      4     u32 model id
    34      4     u32 boot count
    38      1     u8  n: past epochs still (partly) in the buffer, 0..8, oldest first, then n x 12 bytes:
    39+12i  12    u32 epoch | u32 first seq buffered | u32 end seq (one past the epoch's last record)
A device's buffer holds at most 8 past epochs: when a boot would make a 9th, the oldest one's records leave.
The value is longer than a 23-byte MTU's read: the host reads it whole with ATT Read Blob (a long read).
Status, version 1 (still decoded; no device id, epoch 0):
    u8 version = 1 | u8 flags | u32 oldest seq | u32 next seq | u32 capacity | u32 rate mHz | u32 model id |
    u32 boot count
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, unique
from typing import Any, Final

from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion

STATUS_VERSION: Final[int] = 2
STATUS_VERSION_1: Final[int] = 1
BACKFILL_TO_NEWEST: Final[int] = 0xFFFF_FFFF
MAX_PAST_EPOCHS: Final[int] = 8
MAX_DEVICE_ID: Final[int] = 0xFFFF_FFFF_FFFF_FFFF
# Application error codes, in the range the ATT spec leaves to applications (0x80-0x9F).
ATT_ERROR_UNKNOWN_OPCODE: Final[int] = 0x80
ATT_ERROR_BAD_PARAMETER: Final[int] = 0x81
MAX_RATE_MHZ: Final[int] = 0xFFFF_FFFF

_U32: Final = struct.Struct("<I")
_BACKFILL: Final = struct.Struct("<II")
_BACKFILL_EPOCH: Final = struct.Struct("<III")
_STATUS: Final = struct.Struct("<BBQIIIIIIIB")
_STATUS_V1: Final = struct.Struct("<BBIIIIII")
_EPOCH_SPAN: Final = struct.Struct("<III")
STATUS_FLAG_STREAMING: Final[int] = 0x01


@unique
class ControlOpcode(IntEnum):
    START = 0x01
    STOP = 0x02
    SET_RATE = 0x03
    BACKFILL = 0x04
    BACKFILL_EPOCH = 0x05


@dataclass(frozen=True)
class ControlCommand:
    """One control point write; `rate_mhz` only for SET_RATE, `first_seq`/`end_seq` only for the backfills,
    `epoch` only for BACKFILL_EPOCH (None: the current epoch)."""

    opcode: ControlOpcode
    rate_mhz: int = 0
    first_seq: int = 0
    end_seq: int = BACKFILL_TO_NEWEST
    epoch: int | None = None

    @property
    def rate_hz(self) -> float:
        return self.rate_mhz / 1000.0


def start_command() -> bytes:
    return bytes([ControlOpcode.START])


def stop_command() -> bytes:
    return bytes([ControlOpcode.STOP])


def set_rate_command(rate_hz: float) -> bytes:
    rate_mhz = round(rate_hz * 1000)
    if not 1 <= rate_mhz <= MAX_RATE_MHZ:
        raise ValueError(f"rate must be 0.001..{MAX_RATE_MHZ / 1000:g} Hz, got {rate_hz}")
    return bytes([ControlOpcode.SET_RATE]) + _U32.pack(rate_mhz)


def backfill_command(first_seq: int, end_seq: int = BACKFILL_TO_NEWEST) -> bytes:
    if not 0 <= first_seq <= end_seq <= BACKFILL_TO_NEWEST:
        raise ValueError(f"backfill range [{first_seq}, {end_seq}) is not a 32-bit range")
    return bytes([ControlOpcode.BACKFILL]) + _BACKFILL.pack(first_seq, end_seq)


def backfill_epoch_command(epoch: int, first_seq: int, end_seq: int = BACKFILL_TO_NEWEST) -> bytes:
    if not 1 <= epoch <= 0xFFFF_FFFF:
        raise ValueError(f"epoch must be 1..{0xFFFF_FFFF}, got {epoch}")
    if not 0 <= first_seq <= end_seq <= BACKFILL_TO_NEWEST:
        raise ValueError(f"backfill range [{first_seq}, {end_seq}) is not a 32-bit range")
    return bytes([ControlOpcode.BACKFILL_EPOCH]) + _BACKFILL_EPOCH.pack(epoch, first_seq, end_seq)


def decode_command(data: bytes | bytearray | memoryview) -> ControlCommand:
    """A control point write; MalformedPacket when it is empty, unknown or has the wrong parameters."""
    view = memoryview(data)
    if len(view) == 0:
        raise MalformedPacket("empty control point write")
    try:
        opcode = ControlOpcode(view[0])
    except ValueError:
        raise MalformedPacket(f"unknown control opcode {view[0]:#04x}") from None
    body = view[1:]
    expected = {ControlOpcode.SET_RATE: _U32.size, ControlOpcode.BACKFILL: _BACKFILL.size,
                ControlOpcode.BACKFILL_EPOCH: _BACKFILL_EPOCH.size}.get(opcode, 0)
    if len(body) != expected:
        raise MalformedPacket(f"{opcode.name.lower()} takes {expected} parameter bytes, got {len(body)}")
    if opcode is ControlOpcode.SET_RATE:
        (rate_mhz,) = _U32.unpack(body)
        if rate_mhz == 0:
            raise MalformedPacket("set rate to 0 Hz: use stop")
        return ControlCommand(opcode, rate_mhz=rate_mhz)
    if opcode is ControlOpcode.BACKFILL:
        first, end = _BACKFILL.unpack(body)
        if first > end:
            raise MalformedPacket(f"backfill range [{first}, {end}) is reversed")
        return ControlCommand(opcode, first_seq=first, end_seq=end)
    if opcode is ControlOpcode.BACKFILL_EPOCH:
        epoch, first, end = _BACKFILL_EPOCH.unpack(body)
        if epoch == 0:
            raise MalformedPacket("backfill of epoch 0: epochs start at 1")
        if first > end:
            raise MalformedPacket(f"backfill range [{first}, {end}) of epoch {epoch} is reversed")
        return ControlCommand(opcode, first_seq=first, end_seq=end, epoch=epoch)
    return ControlCommand(opcode)


@dataclass(frozen=True)
class EpochSpan:
    """The records of one epoch a device still buffers: [first_seq, end_seq)."""

    epoch: int
    first_seq: int
    end_seq: int

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "first_seq": self.first_seq, "end_seq": self.end_seq}


@dataclass(frozen=True)
class StreamStatus:
    """The device's stream state: who it is, what its buffer still holds and how it streams.

    The current epoch's buffered records are [oldest_seq, next_seq); `past_epochs` are older epochs whose
    records are still in the buffer, oldest first. A version 1 status has no device id and epoch NO_EPOCH (0).
    """

    streaming: bool
    oldest_seq: int
    next_seq: int
    capacity_records: int
    rate_mhz: int
    model_id: int
    boot_count: int
    device_id: int | None = None
    epoch: int = 0
    past_epochs: tuple[EpochSpan, ...] = ()

    @property
    def rate_hz(self) -> float:
        return self.rate_mhz / 1000.0

    @property
    def version(self) -> int:
        return STATUS_VERSION_1 if self.device_id is None else STATUS_VERSION

    @property
    def current(self) -> EpochSpan:
        return EpochSpan(self.epoch, self.oldest_seq, self.next_seq)

    def buffered(self) -> tuple[EpochSpan, ...]:
        """Every epoch in the buffer, oldest first, the current one last."""
        return (*self.past_epochs, self.current)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": None if self.device_id is None else f"{self.device_id:016x}", "epoch": self.epoch,
            "streaming": self.streaming, "oldest_seq": self.oldest_seq, "next_seq": self.next_seq,
            "capacity_records": self.capacity_records, "rate_hz": self.rate_hz, "model_id": self.model_id,
            "boot_count": self.boot_count, "past_epochs": [span.to_dict() for span in self.past_epochs],
        }


def _check_span(span: EpochSpan, what: str) -> None:
    if not 1 <= span.epoch <= 0xFFFF_FFFF:
        raise ValueError(f"{what}: epoch must be 1..{0xFFFF_FFFF}, got {span.epoch}")
    if not 0 <= span.first_seq <= span.end_seq <= 0xFFFF_FFFF:
        raise ValueError(f"{what}: [{span.first_seq}, {span.end_seq}) is not a 32-bit range")


def encode_status(status: StreamStatus) -> bytes:
    """Version 2 when the status names its device, version 1 otherwise."""
    flags = STATUS_FLAG_STREAMING if status.streaming else 0
    if status.device_id is None:
        return _STATUS_V1.pack(STATUS_VERSION_1, flags, status.oldest_seq, status.next_seq,
                               status.capacity_records, status.rate_mhz, status.model_id, status.boot_count)
    if not 1 <= status.device_id <= MAX_DEVICE_ID:
        raise ValueError(f"device id must be 1..2^64-1, got {status.device_id}")
    if len(status.past_epochs) > MAX_PAST_EPOCHS:
        raise ValueError(f"a status lists at most {MAX_PAST_EPOCHS} past epochs, got {len(status.past_epochs)}")
    _check_span(status.current, "current epoch")
    for span in status.past_epochs:
        _check_span(span, "past epoch")
    parts = [_STATUS.pack(STATUS_VERSION, flags, status.device_id, status.epoch, status.oldest_seq, status.next_seq,
                          status.capacity_records, status.rate_mhz, status.model_id, status.boot_count,
                          len(status.past_epochs))]
    parts += [_EPOCH_SPAN.pack(span.epoch, span.first_seq, span.end_seq) for span in status.past_epochs]
    return b"".join(parts)


def decode_status(data: bytes | bytearray | memoryview) -> StreamStatus:
    """The status value; MalformedPacket (UnsupportedVersion for another version) when it does not decode."""
    view = memoryview(data)
    if len(view) == 0:
        raise MalformedPacket("empty status value")
    if view[0] == STATUS_VERSION_1:
        if len(view) != _STATUS_V1.size:
            raise MalformedPacket(f"status value of {len(view)} bytes, version 1 has {_STATUS_V1.size}")
        _, flags, oldest, next_seq, capacity, rate_mhz, model_id, boots = _STATUS_V1.unpack(view)
        if oldest > next_seq:
            raise MalformedPacket(f"status says the buffer starts at {oldest}, after the next seq {next_seq}")
        return StreamStatus(bool(flags & STATUS_FLAG_STREAMING), oldest, next_seq, capacity, rate_mhz, model_id,
                            boots)
    if view[0] != STATUS_VERSION:
        raise UnsupportedVersion(f"status version {view[0]} is not supported (this build reads "
                                 f"{STATUS_VERSION_1} and {STATUS_VERSION})")
    if len(view) < _STATUS.size:
        raise MalformedPacket(f"status value of {len(view)} bytes, version 2 has at least {_STATUS.size}")
    (_, flags, device_id, epoch, oldest, next_seq, capacity, rate_mhz, model_id, boots,
     count) = _STATUS.unpack_from(view)
    if count > MAX_PAST_EPOCHS:
        raise MalformedPacket(f"status lists {count} past epochs, at most {MAX_PAST_EPOCHS} are allowed")
    if len(view) != _STATUS.size + count * _EPOCH_SPAN.size:
        raise MalformedPacket(f"status value of {len(view)} bytes for {count} past epochs, expected "
                              f"{_STATUS.size + count * _EPOCH_SPAN.size}")
    if device_id == 0:
        raise MalformedPacket("status names device id 0, which no device has")
    spans = [EpochSpan(*_EPOCH_SPAN.unpack_from(view, _STATUS.size + i * _EPOCH_SPAN.size)) for i in range(count)]
    for span in (*spans, EpochSpan(epoch, oldest, next_seq)):
        if span.epoch == 0:
            raise MalformedPacket("status names epoch 0: epochs start at 1")
        if span.first_seq > span.end_seq:
            raise MalformedPacket(f"status says epoch {span.epoch} starts at {span.first_seq}, after its end "
                                  f"{span.end_seq}")
    epochs = [span.epoch for span in spans] + [epoch]
    if len(set(epochs)) != len(epochs):
        raise MalformedPacket(f"status lists an epoch twice: {epochs}")
    return StreamStatus(bool(flags & STATUS_FLAG_STREAMING), oldest, next_seq, capacity, rate_mhz, model_id, boots,
                        device_id, epoch, tuple(spans))
