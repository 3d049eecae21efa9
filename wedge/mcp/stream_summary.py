"""Summary statistics over stored stream records: per device counts, sequence gaps, time span and rate, value
statistics per output, and label counts (argmax of a classifier's outputs, named from the model's labels).

Pure functions of `StreamRecord`s, so the same summary serves a database query and a live tail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wedge.edge.bridge.stream_record import KIND_WEDGE, StreamRecord


@dataclass(frozen=True)
class ValueStats:
    index: int
    count: int
    mean: float
    minimum: float
    maximum: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "mean": self.mean, "min": self.minimum,
                "max": self.maximum, "std": self.std}


def iso_time(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat(timespec="milliseconds")


def _value_stats(records: Sequence[StreamRecord]) -> list[ValueStats]:
    width = max((len(r.values) for r in records), default=0)
    stats = []
    for index in range(width):
        column = [r.values[index] for r in records if len(r.values) > index and math.isfinite(r.values[index])]
        if not column:
            continue
        mean = sum(column) / len(column)
        variance = sum((v - mean) ** 2 for v in column) / len(column)
        stats.append(ValueStats(index, len(column), mean, min(column), max(column), math.sqrt(variance)))
    return stats


def label_of(record: StreamRecord, labels: Sequence[str]) -> str | None:
    """The class a classifier record says: the bridge's verdict when it knew the model (and no `labels` were
    given instead), else the argmax of its outputs, by name when `labels` names it."""
    if record.kind != KIND_WEDGE:
        return None
    if not labels and record.scores is not None and record.label is not None:
        return record.label
    if len(record.values) < 2:
        return None
    best = max(range(len(record.values)), key=lambda i: record.values[i])
    return labels[best] if best < len(labels) else f"class {best}"


def device_summary(device: str, records: Sequence[StreamRecord], labels: Sequence[str]) -> dict[str, Any]:
    """One device's records (in (epoch, seq) order) summed up; each boot epoch is numbered from 0 on its own, so
    the missing numbers are counted per epoch and the seq range is the newest epoch's."""
    by_epoch: dict[int, set[int]] = {}
    for r in records:
        by_epoch.setdefault(r.epoch, set()).add(r.seq)
    missing = sum(max(seqs) - min(seqs) + 1 - len(seqs) for seqs in by_epoch.values())
    newest = max(records, key=lambda r: r.t_device_us).epoch
    first, last = min(by_epoch[newest]), max(by_epoch[newest])
    received = [r.received_us for r in records]
    span_s = (max(received) - min(received)) / 1e6
    counts = Counter(label for r in records if (label := label_of(r, labels)) is not None)
    return {
        "device": device,
        "records": len(records),
        "kinds": sorted({r.kind for r in records}),
        "epochs": len(by_epoch),
        "epoch": newest,
        "first_seq": first,
        "last_seq": last,
        "missing_seqs": missing,
        "first_received": iso_time(min(received)),
        "last_received": iso_time(max(received)),
        "span_s": span_s,
        "rate_hz": (len(records) - 1) / span_s if span_s > 0 else None,
        "values": [s.to_dict() for s in _value_stats(records)],
        "label_counts": dict(counts.most_common()),
    }


def summarize(records: Sequence[StreamRecord], labels: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A summary per device, devices by name."""
    by_device: dict[str, list[StreamRecord]] = {}
    for record in records:
        by_device.setdefault(record.device, []).append(record)
    return [device_summary(device, rows, labels) for device, rows in sorted(by_device.items())]
