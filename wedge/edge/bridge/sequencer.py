"""Orders one epoch of a device's records by sequence number: drops duplicates, holds records behind a gap,
names the gaps.

Records leave in sequence order while gaps close quickly (a backfill after a lost notification). A gap still
open after `hold_s` stops holding the stream: the held records leave, and the gap's records leave when the
backfill brings them, late but exactly once. Numbers the sinks already hold (`covered`) count as released. A
gap given up (the device no longer buffers those numbers) counts as lost, and its ranges are kept for the sinks.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from wedge.edge.bridge.coverage import Range, complement, merge

# Past this many held records the stream is released even before hold_s, so holding stays bounded in memory.
DEFAULT_MAX_HELD: Final[int] = 20_000
DEFAULT_HOLD_S: Final[float] = 1.0


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=Sequenced)


@dataclass
class SequenceCounters:
    released: int = 0
    duplicates: int = 0
    lost: int = 0
    out_of_order: int = 0


class Sequencer(Generic[T]):
    """Release bookkeeping for one device.

    `next_seq` is the first number not yet accounted for: every number below it was released or given up.
    Numbers above it may already be released when a gap outlived the hold: `_ahead` keeps them as sorted,
    disjoint [start, end) ranges, so a long backlog costs a few ranges, not a set of thousands of numbers.
    """

    def __init__(self, next_seq: int | None = None, *, covered: Iterable[Range] = (), hold_s: float = DEFAULT_HOLD_S,
                 max_held: int = DEFAULT_MAX_HELD, clock: Callable[[], float] = time.monotonic) -> None:
        self.next_seq = next_seq
        self.hold_s = hold_s
        self.max_held = max_held
        self._clock = clock
        self._held: dict[int, T] = {}
        self._held_since: float | None = None
        self._ahead: list[tuple[int, int]] = merge(covered)
        self._known_end = max([next_seq or 0] + [end for _, end in self._ahead])
        self.counters = SequenceCounters()
        self.lost_ranges: list[Range] = []  # given up and not yet handed to the sinks (`take_lost`)
        if next_seq is not None:
            self._drop_ahead_below(next_seq)
            self._release()

    @property
    def started(self) -> bool:
        return self.next_seq is not None

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def known_end(self) -> int:
        """One past the newest number known to exist (received, covered, or announced by the device)."""
        return self._known_end

    def take_lost(self) -> list[Range]:
        lost, self.lost_ranges = self.lost_ranges, []
        return lost

    def start_at(self, seq: int) -> None:
        """Begin (or move forward) the release point; earlier numbers are not expected any more."""
        if self.next_seq is None or seq > self.next_seq:
            self.next_seq = seq
            self._known_end = max(self._known_end, seq)
            self._drop_ahead_below(seq)

    def offer(self, record: T) -> list[T]:
        """Take one record; returns the records now releasable."""
        if self.next_seq is None:
            self.start_at(record.seq)
        assert self.next_seq is not None
        seq = record.seq
        if seq < self.next_seq or seq in self._held or self._is_ahead(seq):
            self.counters.duplicates += 1
            return []
        if seq > self.next_seq and self._held_since is None:
            self._held_since = self._clock()
        self._held[seq] = record
        if seq >= self._known_end:
            self._known_end = seq + 1
        released = self._release()
        return released + self.expire()

    def expire(self, *, force: bool = False) -> list[T]:
        """Stop holding the stream behind a gap older than hold_s (or once too much is held, or when forced)."""
        if not self._held:
            self._held_since = None
            return []
        if not force and len(self._held) <= self.max_held and (
                self._held_since is None or self._clock() - self._held_since < self.hold_s):
            return []
        order = sorted(self._held)
        released = [self._held[s] for s in order]
        self._add_ahead(order)
        self._held.clear()
        self._held_since = None
        self.counters.out_of_order += len(released)
        self.counters.released += len(released)
        return released

    def release_all(self) -> list[T]:
        """Everything still held, in order, whatever the gaps (the bridge is stopping)."""
        return self.expire(force=True)

    def note_device_next(self, next_seq: int) -> None:
        """The device says it has produced records up to next_seq - 1: any not received are missing."""
        self._known_end = max(self._known_end, next_seq)

    def missing(self) -> list[tuple[int, int]]:
        """The gaps as [first, end) ranges between the release point and the newest known number."""
        if self.next_seq is None:
            return []
        present = sorted([(s, s + 1) for s in self._held] + self._ahead)
        gaps: list[tuple[int, int]] = []
        cursor = self.next_seq
        for start, end in present:
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, end)
        if self._known_end > cursor:
            gaps.append((cursor, self._known_end))
        return gaps

    def give_up(self, before_seq: int) -> list[T]:
        """Numbers below before_seq that never arrived are lost; returns the records this releases."""
        if self.next_seq is None or before_seq <= self.next_seq:
            return []
        held_below = sorted(s for s in self._held if s < before_seq)
        lost = complement(self._ahead + [(s, s + 1) for s in held_below], self.next_seq, before_seq)
        self.counters.lost += sum(end - start for start, end in lost)
        self.lost_ranges.extend(lost)
        released = [self._held.pop(s) for s in held_below]
        self._drop_ahead_below(before_seq)
        self.next_seq = before_seq
        self._known_end = max(self._known_end, before_seq)
        self.counters.released += len(released)
        return released + self._release()

    def _is_ahead(self, seq: int) -> bool:
        index = bisect.bisect_right(self._ahead, (seq, float("inf"))) - 1
        return index >= 0 and self._ahead[index][0] <= seq < self._ahead[index][1]

    def _add_ahead(self, ordered: Iterable[int]) -> None:
        runs: list[tuple[int, int]] = []
        for seq in ordered:
            if runs and runs[-1][1] == seq:
                runs[-1] = (runs[-1][0], seq + 1)
            else:
                runs.append((seq, seq + 1))
        self._ahead = merge(self._ahead + runs)

    def _drop_ahead_below(self, seq: int) -> None:
        self._ahead = [(max(start, seq), end) for start, end in self._ahead if end > seq]

    def _release(self) -> list[T]:
        assert self.next_seq is not None
        released = []
        held, ahead = self._held, self._ahead
        seq = self.next_seq
        while True:
            if seq in held:
                released.append(held.pop(seq))
                seq += 1
            elif ahead and ahead[0][0] <= seq:
                seq = max(seq, ahead.pop(0)[1])
            else:
                break
        self.next_seq = seq
        self.counters.released += len(released)
        if not held:
            self._held_since = None
        return released
