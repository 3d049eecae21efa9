"""The standard Heart Rate Measurement characteristic (0x2A37): encode on the device, decode on the host.

Layout (Heart Rate Service 1.0, section 3.1): u8 flags | heart rate (u8, or u16 when flags bit 0) |
[u16 energy expended in kJ, when bit 3] | [u16 RR intervals in 1/1024 s, as many as fit, when bit 4].
Flags bits 1-2: sensor contact (bit 2 = contact detection supported, bit 1 = contact detected).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from wedge.firmware.protocol.ble_errors import MalformedPacket

FLAG_HR_UINT16: Final[int] = 0x01
FLAG_CONTACT_DETECTED: Final[int] = 0x02
FLAG_CONTACT_SUPPORTED: Final[int] = 0x04
FLAG_ENERGY: Final[int] = 0x08
FLAG_RR: Final[int] = 0x10
RR_UNITS_PER_S: Final[int] = 1024
MAX_U16: Final[int] = 0xFFFF

_U16: Final = struct.Struct("<H")


@dataclass(frozen=True)
class HeartRateMeasurement:
    """One 0x2A37 value. contact is None when the sensor cannot detect contact."""

    bpm: int
    contact: bool | None = None
    energy_kj: int | None = None
    rr_intervals_1024: tuple[int, ...] = ()

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        return tuple(rr / RR_UNITS_PER_S for rr in self.rr_intervals_1024)

    def to_dict(self) -> dict[str, Any]:
        return {"bpm": self.bpm, "contact": self.contact, "energy_kj": self.energy_kj,
                "rr_intervals_s": list(self.rr_intervals_s)}


def rr_units(rr_interval_s: float) -> int:
    """An RR interval in seconds as 1/1024 s units, clamped to what 16 bits hold."""
    return min(max(round(rr_interval_s * RR_UNITS_PER_S), 0), MAX_U16)


def encode_heart_rate(measurement: HeartRateMeasurement) -> bytes:
    """The 0x2A37 bytes: a uint8 value when the rate fits in one, else uint16."""
    if not 0 <= measurement.bpm <= MAX_U16:
        raise ValueError(f"heart rate {measurement.bpm} bpm does not fit in 16 bits")
    flags = 0
    if measurement.bpm > 0xFF:
        flags |= FLAG_HR_UINT16
    if measurement.contact is not None:
        flags |= FLAG_CONTACT_SUPPORTED | (FLAG_CONTACT_DETECTED if measurement.contact else 0)
    if measurement.energy_kj is not None:
        flags |= FLAG_ENERGY
    if measurement.rr_intervals_1024:
        flags |= FLAG_RR
    parts = [bytes([flags])]
    parts.append(_U16.pack(measurement.bpm) if flags & FLAG_HR_UINT16 else bytes([measurement.bpm]))
    if measurement.energy_kj is not None:
        if not 0 <= measurement.energy_kj <= MAX_U16:
            raise ValueError(f"energy {measurement.energy_kj} kJ does not fit in 16 bits")
        parts.append(_U16.pack(measurement.energy_kj))
    for rr in measurement.rr_intervals_1024:
        if not 0 <= rr <= MAX_U16:
            raise ValueError(f"RR interval {rr}/1024 s does not fit in 16 bits")
        parts.append(_U16.pack(rr))
    return b"".join(parts)


def decode_heart_rate(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """A 0x2A37 value; MalformedPacket when it is truncated or has a dangling byte."""
    view = bytes(data)
    if not view:
        raise MalformedPacket("empty heart rate measurement")
    flags = view[0]
    offset = 1
    width = 2 if flags & FLAG_HR_UINT16 else 1
    if len(view) < offset + width:
        raise MalformedPacket(f"heart rate measurement truncated before its {width * 8}-bit value")
    bpm = _U16.unpack_from(view, offset)[0] if width == 2 else view[offset]
    offset += width
    contact = bool(flags & FLAG_CONTACT_DETECTED) if flags & FLAG_CONTACT_SUPPORTED else None
    energy: int | None = None
    if flags & FLAG_ENERGY:
        if len(view) < offset + 2:
            raise MalformedPacket("heart rate measurement truncated in its energy field")
        energy = _U16.unpack_from(view, offset)[0]
        offset += 2
    rr: tuple[int, ...] = ()
    if flags & FLAG_RR:
        rest = len(view) - offset
        if rest == 0 or rest % 2:
            raise MalformedPacket(f"heart rate measurement has {rest} bytes of RR intervals, expected pairs")
        rr = struct.unpack_from(f"<{rest // 2}H", view, offset)
        offset = len(view)
    if offset != len(view):
        raise MalformedPacket(f"{len(view) - offset} unexpected bytes after the heart rate measurement")
    return HeartRateMeasurement(bpm, contact, energy, tuple(rr))
