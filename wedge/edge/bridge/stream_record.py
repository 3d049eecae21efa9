"""What the bridge hands its sinks: one record from one device, with when it was received.

Wedge stream records keep the device's sequence number; Heart Rate devices get one from the bridge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from wedge.firmware.protocol.ble_records import Record
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement

KIND_WEDGE: Final[str] = "wedge"
KIND_HEART_RATE: Final[str] = "heart_rate"


@dataclass(frozen=True)
class StreamRecord:
    """One record as stored: `device` is the device's stable key (its serial number, else its address)."""

    device: str
    seq: int
    t_device_us: int
    received_us: int
    kind: str
    model_id: int | None
    values: tuple[float, ...]
    detail: dict[str, Any]
    backfill: bool = False  # fetched from the device's buffer after a gap, not received live

    @classmethod
    def from_record(cls, device: str, record: Record, received_us: int) -> StreamRecord:
        outputs = record.outputs
        values = outputs[0].real_values() if len(outputs) == 1 else tuple(
            chain.from_iterable(o.real_values() for o in outputs))
        return cls(device, record.seq, record.t_device_us, received_us, KIND_WEDGE, record.model_id, values,
                   {"outputs": [{"dtype": o.dtype.name.lower(), "raw": o.values, "scale": o.scale,
                                 "zero_point": o.zero_point} for o in record.outputs]}, record.backfill)

    @classmethod
    def from_heart_rate(cls, device: str, seq: int, measurement: HeartRateMeasurement,
                        received_us: int) -> StreamRecord:
        # The standard measurement has no timestamp: the phone's receive time stands in for the device's.
        return cls(device, seq, received_us, received_us, KIND_HEART_RATE, None,
                   (float(measurement.bpm), *measurement.rr_intervals_s), measurement.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "seq": self.seq, "t_device_us": self.t_device_us,
            "received_us": self.received_us, "kind": self.kind, "model_id": self.model_id,
            "values": list(self.values), "backfill": self.backfill, **self.detail,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))
