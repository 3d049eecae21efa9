"""The device-side record buffer: the newest records by sequence number, kept across BLE disconnects.

Sequence numbers never go back, even across reboots: a clean shutdown saves the buffer and the next number,
and a crash resumes after a reserved block, so a number is never given to two different records.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol.ble_records import MAX_SEQ

# Sequence numbers are reserved in blocks in the state file, so a crash (no clean save) costs at most one
# block of unused numbers instead of a write per record (flash wear on a real board).
SEQ_RESERVE_BLOCK: Final[int] = 4096
STATE_FILE: Final[str] = "ble_records.json"


class RecordRing:
    """Encoded records by sequence number: [oldest_seq, next_seq), at most `capacity` of them."""

    def __init__(self, capacity: int, state_dir: Path | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"the record buffer needs room for at least one record, got {capacity}")
        self.capacity = capacity
        self._records: deque[bytes] = deque(maxlen=capacity)
        self._state_path = None if state_dir is None else state_dir / STATE_FILE
        self.next_seq = 0
        self.boot_count = 1
        self._reserved_until = 0
        if self._state_path is not None:
            self._load()

    @property
    def oldest_seq(self) -> int:
        return self.next_seq - len(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def take_seq(self) -> int:
        """The sequence number for the next record (append it with `append`)."""
        if self.next_seq > MAX_SEQ:
            raise VirtualBoardError("the record sequence number space (32 bits) is used up")
        if self._state_path is not None and self.next_seq >= self._reserved_until:
            self._reserved_until = self.next_seq + SEQ_RESERVE_BLOCK
            self._write(saved=False)
        return self.next_seq

    def append(self, seq: int, encoded: bytes) -> None:
        if seq != self.next_seq:
            raise ValueError(f"records are appended in order: expected seq {self.next_seq}, got {seq}")
        self._records.append(encoded)
        self.next_seq += 1

    def get(self, seq: int) -> bytes | None:
        index = seq - self.oldest_seq
        if 0 <= index < len(self._records):
            return self._records[index]
        return None

    def iter_from(self, first_seq: int, end_seq: int) -> Iterator[tuple[int, bytes]]:
        """Buffered records with first_seq <= seq < end_seq, oldest first (a snapshot: appends do not disturb it)."""
        start = max(first_seq, self.oldest_seq)
        stop = min(end_seq, self.next_seq)
        snapshot = list(self._records)
        base = self.oldest_seq
        for seq in range(start, stop):
            yield seq, snapshot[seq - base]

    def save(self) -> None:
        """Keep the buffer and the next sequence number across a clean restart."""
        if self._state_path is not None:
            self._write(saved=True)

    def _write(self, *, saved: bool) -> None:
        assert self._state_path is not None
        state = {
            "next_seq": self.next_seq,
            "reserved_until": self._reserved_until,
            "boot_count": self.boot_count,
            "saved": saved,
            "records": [r.hex() for r in self._records] if saved else [],
        }
        tmp = self._state_path.with_suffix(".tmp")
        try:
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self._state_path)
        except OSError as exc:
            raise VirtualBoardError(f"cannot keep the record buffer in {self._state_path}: {exc.strerror}") from exc

    def _load(self) -> None:
        assert self._state_path is not None
        if not self._state_path.is_file():
            return
        try:
            state = json.loads(self._state_path.read_text())
            next_seq = int(state["next_seq"])
            reserved = int(state["reserved_until"])
            boots = int(state["boot_count"])
            records = [bytes.fromhex(r) for r in state["records"]] if state.get("saved") else []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VirtualBoardError(f"unreadable record buffer state {self._state_path}: {exc}") from exc
        self.boot_count = boots + 1
        if state.get("saved"):
            self.next_seq = next_seq
            for encoded in records[-self.capacity:]:
                self._records.append(encoded)
        else:
            # A crash: numbers up to the reservation may have been used by records that are now lost.
            self.next_seq = max(next_seq, reserved)
        self._reserved_until = self.next_seq
        # The saved buffer is consumed: a crash after this boot must not bring it back a second time.
        self._write(saved=False)
