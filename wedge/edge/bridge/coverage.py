"""What the durable sinks already hold of a device, per epoch: so a restarted bridge asks only for the rest.

Ranges are sorted, disjoint [start, end) lists of sequence numbers; a number is covered when it is stored, or
recorded as lost (the device no longer had it). Several sinks cover only what every one of them covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Range = tuple[int, int]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """The union of ranges, sorted and disjoint (touching ranges are joined)."""
    merged: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(a: Iterable[Range], b: Iterable[Range]) -> list[Range]:
    """The numbers in both lists of ranges."""
    left, right = merge(a), merge(b)
    out: list[Range] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def complement(ranges: Iterable[Range], start: int, end: int) -> list[Range]:
    """The numbers of [start, end) outside the ranges."""
    out: list[Range] = []
    cursor = start
    for a, b in merge(ranges):
        if b <= cursor or a >= end:
            continue
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def _min_or_none(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else min(a, b)


@dataclass(frozen=True)
class EpochCoverage:
    """One epoch, around the window a bridge asked about ([first, end): what the device still buffers)."""

    covered: tuple[Range, ...] = ()   # inside the window
    end_below: int | None = None      # one past the highest covered number below the window; None: none is
    newest: int | None = None         # one past the highest covered number of the epoch; None: nothing at all

    def intersect(self, other: EpochCoverage) -> EpochCoverage:
        return EpochCoverage(tuple(intersect(self.covered, other.covered)),
                             _min_or_none(self.end_below, other.end_below), _min_or_none(self.newest, other.newest))


@dataclass(frozen=True)
class Coverage:
    """What the sinks hold of one device: `known` when they hold anything of it, `last_epoch` the epoch of the
    record stored most recently, and the epochs asked about."""

    known: bool = False
    last_epoch: int | None = None
    epochs: dict[int, EpochCoverage] = field(default_factory=dict)

    def epoch(self, epoch: int) -> EpochCoverage:
        return self.epochs.get(epoch, EpochCoverage())

    def intersect(self, other: Coverage) -> Coverage:
        epochs = {e: self.epoch(e).intersect(other.epoch(e)) for e in self.epochs.keys() | other.epochs.keys()}
        last = self.last_epoch if self.last_epoch == other.last_epoch else None
        return Coverage(self.known and other.known, last, epochs)
