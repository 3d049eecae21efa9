"""What the bridge hands its sinks: one record from one device, with when it was received, and the ranges of
records a device produced that no sink will ever get (lost).

A record's key is (device, epoch, seq): wedge stream records keep the device's epoch and sequence number;
Heart Rate devices get numbers from the bridge, in epoch 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from wedge.firmware.protocol.ble_records import NO_EPOCH, Record
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement

KIND_WEDGE: Final[str] = "wedge"
KIND_HEART_RATE: Final[str] = "heart_rate"
KIND_LOST: Final[str] = "lost"


@dataclass(frozen=True)
class StreamRecord:
    """One record as stored: `device` is the device's stable key (its device id in 16 hex digits; a device
    without the wedge stream: its serial number, else its address), `epoch` the boot epoch it was made in."""

    device: str
    epoch: int
    seq: int
    t_device_us: int
    received_us: int
    kind: str
    model_id: int | None
    values: tuple[float, ...]
    detail: dict[str, Any]
    backfill: bool = False  # fetched from the device's buffer after a gap, not received live
    name: str | None = None  # the name the device advertised (a label: several devices may share it)

    @classmethod
    def from_record(cls, device: str, record: Record, received_us: int, name: str | None = None) -> StreamRecord:
        outputs = record.outputs
        values = outputs[0].real_values() if len(outputs) == 1 else tuple(
            chain.from_iterable(o.real_values() for o in outputs))
        return cls(device, record.epoch, record.seq, record.t_device_us, received_us, KIND_WEDGE, record.model_id,
                   values,
                   {"outputs": [{"dtype": o.dtype.name.lower(), "raw": o.values, "scale": o.scale,
                                 "zero_point": o.zero_point} for o in record.outputs]}, record.backfill, name)

    @classmethod
    def from_heart_rate(cls, device: str, seq: int, measurement: HeartRateMeasurement,
                        received_us: int, name: str | None = None) -> StreamRecord:
        # The standard measurement has no timestamp: the phone's receive time stands in for the device's.
        return cls(device, NO_EPOCH, seq, received_us, received_us, KIND_HEART_RATE, None,
                   (float(measurement.bpm), *measurement.rr_intervals_s), measurement.to_dict(), name=name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "epoch": self.epoch, "seq": self.seq, "t_device_us": self.t_device_us,
            "received_us": self.received_us, "kind": self.kind, "model_id": self.model_id,
            "values": list(self.values), "backfill": self.backfill, "name": self.name, **self.detail,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamRecord:
        """The record `to_dict` made (what a consumer of the JSON sinks or of MQTT reads back); the fields it does
        not name are the detail. ValueError when a field is missing or of the wrong type."""
        fields = {key: data.get(key) for key in _RECORD_FIELDS}
        try:
            record = cls(_text(fields["device"]), _integer(fields["epoch"]), _integer(fields["seq"]),
                         _integer(fields["t_device_us"]), _integer(fields["received_us"]), _text(fields["kind"]),
                         None if fields["model_id"] is None else _integer(fields["model_id"]),
                         tuple(float(v) for v in fields["values"]),  # type: ignore[union-attr]
                         {k: v for k, v in data.items() if k not in _RECORD_FIELDS}, bool(fields["backfill"]),
                         None if fields["name"] is None else _text(fields["name"]))
        except TypeError as exc:
            raise ValueError(f"not a stream record: {exc}") from exc
        return record


_RECORD_FIELDS: Final[tuple[str, ...]] = ("device", "epoch", "seq", "t_device_us", "received_us", "kind", "model_id",
                                          "values", "backfill", "name")


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


@dataclass(frozen=True)
class LostRange:
    """Records [first_seq, end_seq) of one device's epoch that it produced and no longer holds, never stored."""

    device: str
    epoch: int
    first_seq: int
    end_seq: int
    noted_us: int

    @property
    def count(self) -> int:
        return self.end_seq - self.first_seq

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LostRange:
        """The range `to_dict` made; ValueError when a field is missing or of the wrong type."""
        if data.get("kind") != KIND_LOST:
            raise ValueError(f"not a lost range: kind {data.get('kind')!r}")
        return cls(_text(data.get("device")), _integer(data.get("epoch")), _integer(data.get("first_seq")),
                   _integer(data.get("end_seq")), _integer(data.get("noted_us")))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND_LOST, "device": self.device, "epoch": self.epoch, "first_seq": self.first_seq,
                "end_seq": self.end_seq, "noted_us": self.noted_us}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))
