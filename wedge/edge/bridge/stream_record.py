"""What the bridge hands its sinks: one record from one device, with when it was received, and the ranges of
records a device produced that no sink will ever get (lost).

A record's key is (device, epoch, seq): wedge stream records keep the device's epoch and sequence number;
Heart Rate devices get numbers from the bridge, in epoch 0. A record carries its verdict (`label`, `score`,
`scores`) when its model is known. `to_dict` uses the SQLite sink's column names, so every sink speaks alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Final

from wedge.edge.bridge.models import verdict
from wedge.firmware.protocol.ble_model_info import ModelInfo
from wedge.firmware.protocol.ble_records import NO_EPOCH, Record
from wedge.firmware.protocol.heart_rate import HeartRateMeasurement

KIND_WEDGE: Final[str] = "wedge"
KIND_HEART_RATE: Final[str] = "heart_rate"
KIND_LOST: Final[str] = "lost"
KIND_MODEL: Final[str] = "model"
HEART_RATE_UNIT: Final[str] = "bpm"


def iso_time(us: int) -> str:
    """Microseconds since the UNIX epoch as ISO 8601 UTC to the millisecond (2025-01-31T12:00:00.123Z), the same
    text the SQLite migration computes for old rows."""
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros // 1000:03d}Z"


def model_dict(model: ModelInfo) -> dict[str, Any]:
    """A model as the sinks write it (the SQLite `models` table's columns)."""
    return {"kind": KIND_MODEL, **model.to_dict()}


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
    label: str | None = None  # the class it says, or the unit of its value (None: its model is not known)
    score: float | None = None  # that class's probability, or the value
    scores: tuple[float, ...] | None = None  # every class's probability, in the model's label order
    model: ModelInfo | None = None  # the model that made it, when the bridge knows it

    @classmethod
    def from_record(cls, device: str, record: Record, received_us: int, name: str | None = None,
                    model: ModelInfo | None = None) -> StreamRecord:
        outputs = record.outputs
        values = outputs[0].real_values() if len(outputs) == 1 else tuple(
            chain.from_iterable(o.real_values() for o in outputs))
        said = verdict(values, model if model is not None and model.model_id == record.model_id else None)
        return cls(device, record.epoch, record.seq, record.t_device_us, received_us, KIND_WEDGE, record.model_id,
                   values,
                   {"tensors": [{"dtype": o.dtype.name.lower(), "raw": o.values, "scale": o.scale,
                                 "zero_point": o.zero_point} for o in record.outputs]}, record.backfill, name,
                   said.label, said.score, said.scores, model)

    @classmethod
    def from_heart_rate(cls, device: str, seq: int, measurement: HeartRateMeasurement,
                        received_us: int, name: str | None = None) -> StreamRecord:
        # The standard measurement has no timestamp: the phone's receive time stands in for the device's.
        return cls(device, NO_EPOCH, seq, received_us, received_us, KIND_HEART_RATE, None,
                   (float(measurement.bpm), *measurement.rr_intervals_s), measurement.to_dict(), name=name,
                   label=HEART_RATE_UNIT, score=float(measurement.bpm))

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "name": self.name, "epoch": self.epoch, "seq": self.seq,
            "t_device_us": self.t_device_us, "t_device": iso_time(self.t_device_us),
            "received_us": self.received_us, "received": iso_time(self.received_us), "kind": self.kind,
            "model_id": self.model_id, "model": None if self.model is None else self.model.name,
            "label": self.label, "score": self.score, "outputs": list(self.values),
            "scores": None if self.scores is None else list(self.scores), "backfill": self.backfill,
            "detail": self.detail,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamRecord:
        """The record `to_dict` made (what a consumer of the JSON sinks or of MQTT reads back), with its verdict;
        its model by name only (the `models` line or table describes it). A record of a bridge before schema 3
        (`values`, detail fields at the top level) reads too. ValueError when a field is missing or mistyped."""
        outputs = data.get("outputs", data.get("values"))
        detail = data.get("detail")
        if not isinstance(detail, dict):
            detail = {k: v for k, v in data.items() if k not in _RECORD_FIELDS}
        scores = data.get("scores")
        score = data.get("score")
        try:
            record = cls(_text(data.get("device")), _integer(data.get("epoch")), _integer(data.get("seq")),
                         _integer(data.get("t_device_us")), _integer(data.get("received_us")), _text(data.get("kind")),
                         None if data.get("model_id") is None else _integer(data.get("model_id")),
                         tuple(float(v) for v in outputs),  # type: ignore[union-attr]
                         detail, bool(data.get("backfill")),
                         None if data.get("name") is None else _text(data.get("name")),
                         None if data.get("label") is None else _text(data.get("label")),
                         None if score is None else float(score),
                         None if scores is None else tuple(float(v) for v in scores))
        except TypeError as exc:
            raise ValueError(f"not a stream record: {exc}") from exc
        return record


# Every field `to_dict` writes (and the older `values`): the rest of an old-style record is its detail.
_RECORD_FIELDS: Final[frozenset[str]] = frozenset({
    "device", "name", "epoch", "seq", "t_device_us", "t_device", "received_us", "received", "kind", "model_id",
    "model", "label", "score", "outputs", "values", "scores", "backfill", "detail"})


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
