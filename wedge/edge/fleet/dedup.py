"""Which (device, epoch, seq) keys a subscriber has already taken: runs of numbers per (device, epoch), so a
record published twice (its acknowledgement was cut off, the bridge restarted) is stored once.

Memory grows with the number of holes, not of records: a whole stream is one run per epoch.
"""

from __future__ import annotations

import bisect

from wedge.edge.bridge.coverage import Range


class SeenNumbers:
    """Disjoint, sorted runs [start, end) of the numbers seen in one (device, epoch)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, seq: int) -> bool:
        """True when `seq` is new (and is now seen), False for a duplicate."""
        i = bisect.bisect_right(self._starts, seq) - 1
        if i >= 0 and seq < self._ends[i]:
            return False
        joins_left = i >= 0 and self._ends[i] == seq
        joins_right = i + 1 < len(self._starts) and self._starts[i + 1] == seq + 1
        if joins_left and joins_right:
            self._ends[i] = self._ends[i + 1]
            del self._starts[i + 1], self._ends[i + 1]
        elif joins_left:
            self._ends[i] = seq + 1
        elif joins_right:
            self._starts[i + 1] = seq
        else:
            self._starts.insert(i + 1, seq)
            self._ends.insert(i + 1, seq + 1)
        return True

    def runs(self) -> list[Range]:
        return list(zip(self._starts, self._ends, strict=True))


class SeenKeys:
    """SeenNumbers per (device, epoch)."""

    def __init__(self) -> None:
        self._epochs: dict[tuple[str, int], SeenNumbers] = {}

    def add(self, device: str, epoch: int, seq: int) -> bool:
        numbers = self._epochs.get((device, epoch))
        if numbers is None:
            numbers = self._epochs[(device, epoch)] = SeenNumbers()
        return numbers.add(seq)

    def runs(self, device: str, epoch: int) -> list[Range]:
        numbers = self._epochs.get((device, epoch))
        return numbers.runs() if numbers is not None else []
