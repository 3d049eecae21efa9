"""The wedge stream's control point commands and status value: how the host steers the stream and reads its state.

Control point (write with response), little-endian:
    0x01 start | 0x02 stop | 0x03 set rate: u32 records per 1000 s (milli-hertz) |
    0x04 backfill: u32 first seq | u32 end seq (exclusive; 0xFFFFFFFF = up to the newest)
A device answers a bad command with ATT error 0x80 (unknown opcode) or 0x81 (bad parameter).
Status (read), version 1:
    u8 version | u8 flags (bit 0: streaming) | u32 oldest buffered seq | u32 next seq | u32 buffer capacity |
    u32 rate in mHz | u32 model id | u32 boot count
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, unique
from typing import Any, Final

from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion

STATUS_VERSION: Final[int] = 1
BACKFILL_TO_NEWEST: Final[int] = 0xFFFF_FFFF
# Application error codes, in the range the ATT spec leaves to applications (0x80-0x9F).
ATT_ERROR_UNKNOWN_OPCODE: Final[int] = 0x80
ATT_ERROR_BAD_PARAMETER: Final[int] = 0x81
MAX_RATE_MHZ: Final[int] = 0xFFFF_FFFF

_U32: Final = struct.Struct("<I")
_BACKFILL: Final = struct.Struct("<II")
_STATUS: Final = struct.Struct("<BBIIIIII")
STATUS_FLAG_STREAMING: Final[int] = 0x01


@unique
class ControlOpcode(IntEnum):
    START = 0x01
    STOP = 0x02
    SET_RATE = 0x03
    BACKFILL = 0x04


@dataclass(frozen=True)
class ControlCommand:
    """One control point write; `rate_mhz` only for SET_RATE, `first_seq`/`end_seq` only for BACKFILL."""

    opcode: ControlOpcode
    rate_mhz: int = 0
    first_seq: int = 0
    end_seq: int = BACKFILL_TO_NEWEST

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
    expected = {ControlOpcode.SET_RATE: _U32.size, ControlOpcode.BACKFILL: _BACKFILL.size}.get(opcode, 0)
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
    return ControlCommand(opcode)


@dataclass(frozen=True)
class StreamStatus:
    """The device's stream state: what its buffer still holds ([oldest_seq, next_seq)) and how it streams."""

    streaming: bool
    oldest_seq: int
    next_seq: int
    capacity_records: int
    rate_mhz: int
    model_id: int
    boot_count: int

    @property
    def rate_hz(self) -> float:
        return self.rate_mhz / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "streaming": self.streaming, "oldest_seq": self.oldest_seq, "next_seq": self.next_seq,
            "capacity_records": self.capacity_records, "rate_hz": self.rate_hz, "model_id": self.model_id,
            "boot_count": self.boot_count,
        }


def encode_status(status: StreamStatus) -> bytes:
    return _STATUS.pack(
        STATUS_VERSION, STATUS_FLAG_STREAMING if status.streaming else 0, status.oldest_seq, status.next_seq,
        status.capacity_records, status.rate_mhz, status.model_id, status.boot_count,
    )


def decode_status(data: bytes | bytearray | memoryview) -> StreamStatus:
    """The status value; MalformedPacket (UnsupportedVersion for another version) when it does not decode."""
    view = memoryview(data)
    if len(view) == 0:
        raise MalformedPacket("empty status value")
    if view[0] != STATUS_VERSION:
        raise UnsupportedVersion(f"status version {view[0]} is not supported (this build reads {STATUS_VERSION})")
    if len(view) != _STATUS.size:
        raise MalformedPacket(f"status value of {len(view)} bytes, expected {_STATUS.size}")
    _, flags, oldest, next_seq, capacity, rate_mhz, model_id, boots = _STATUS.unpack(view)
    if oldest > next_seq:
        raise MalformedPacket(f"status says the buffer starts at {oldest}, after the next seq {next_seq}")
    return StreamStatus(bool(flags & STATUS_FLAG_STREAMING), oldest, next_seq, capacity, rate_mhz, model_id, boots)
