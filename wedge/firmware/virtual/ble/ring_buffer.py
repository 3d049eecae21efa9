"""The device-side record buffer: the newest records of the last few boot epochs, kept in a flash-like log.

Each boot starts a new epoch (the stored one + 1; a random one when none is stored) whose sequence numbers start
at 0, so numbers never need reserving and a crash skips none. Records are written through to an append-only log
before they are sent, as a flash ring buffer holds them: a kill -9 or power cut loses none, and after the next
boot the host fetches the old epoch's tail by naming it. The stable device id is kept beside them.

On a ring's firmware (portable C, no malloc) the same thing is a flash circular buffer of records (Zephyr's FCB:
append-only sectors, the oldest erased when full), the epoch in a settings entry written once per boot, and the
table of buffered epochs (at most 1 + MAX_PAST_EPOCHS entries of epoch, first and end: 108 bytes of RAM) rebuilt
at boot from the record headers and kept up to date on append and on erase.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.protocol.ble_control import MAX_DEVICE_ID, MAX_PAST_EPOCHS, EpochSpan
from wedge.firmware.protocol.ble_errors import MalformedPacket
from wedge.firmware.protocol.ble_records import MAX_EPOCH, MAX_SEQ, NO_EPOCH, Record, decode_record, record_key

DEVICE_ID_FILE: Final[str] = "device_id"      # the firmware's hardware id (FICR DEVICEID on an nRF52840)
STREAM_FILE: Final[str] = "stream.json"       # the last epoch and the boot count: one write per boot
LOG_FILE: Final[str] = "records.log"          # u16 length | record, appended per record
LEGACY_STATE_FILE: Final[str] = "ble_records.json"  # the epoch-less layout: its boot count carries over
# A random first epoch stays below 2^31, so a device counting up from it never wraps in practice.
RANDOM_EPOCH_LIMIT: Final[int] = 2**31
# The log is rewritten with only the buffered records once it holds this many times the capacity.
COMPACT_FACTOR: Final[int] = 2
_ENTRY: Final = struct.Struct("<H")


@dataclass
class _Span:
    epoch: int
    first: int
    end: int


def random_epoch() -> int:
    return secrets.randbelow(RANDOM_EPOCH_LIMIT - 1) + 1


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_log(path: Path) -> list[tuple[int, int, bytes]]:
    """(epoch, seq, record) of each entry of a record log, up to the first torn or damaged one (a board that
    died mid-write); numbers run on within an epoch and an epoch never comes back."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    entries: list[tuple[int, int, bytes]] = []
    offset = 0
    seen: set[int] = set()
    while offset + _ENTRY.size <= len(data):
        (length,) = _ENTRY.unpack_from(data, offset)
        end = offset + _ENTRY.size + length
        if end > len(data):
            break
        encoded = data[offset + _ENTRY.size:end]
        try:
            epoch, seq = record_key(encoded)
        except MalformedPacket:
            break
        last = entries[-1] if entries else None
        if epoch == NO_EPOCH or (last is not None and last[0] == epoch and seq != last[1] + 1):
            break
        if (last is None or last[0] != epoch) and epoch in seen:
            break
        seen.add(epoch)
        entries.append((epoch, seq, encoded))
        offset = end
    return entries


def logged_records(state_dir: Path) -> list[Record]:
    """The records a virtual board's state folder still holds, oldest first: what it produced (up to its buffer's
    capacity), for checking what reached the sinks against it."""
    return [decode_record(encoded) for _, _, encoded in read_log(state_dir / LOG_FILE)]


class RecordRing:
    """Encoded records of the current and up to MAX_PAST_EPOCHS older epochs, at most `capacity` in all.

    Without a state folder nothing is kept: each instance is a fresh boot of a device with a random id.
    """

    def __init__(self, capacity: int, state_dir: Path | None = None, *, device_id: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"the record buffer needs room for at least one record, got {capacity}")
        self.capacity = capacity
        self._records: deque[bytes] = deque()
        self._spans: deque[_Span] = deque()
        self._dir = state_dir
        self._log_fd: int | None = None
        self._log_entries = 0
        try:
            if state_dir is not None:
                state_dir.mkdir(parents=True, exist_ok=True)
            self.device_id = device_id if device_id is not None else self._device_id()
            if state_dir is not None:
                self._load_log()
            self.boot_count, self.epoch = self._boot()
            self.next_seq = 0
            self._trim_past_epochs()
            if state_dir is not None:
                self._compact()
        except OSError as exc:
            raise VirtualBoardError(f"cannot keep the record buffer in {state_dir}: {exc.strerror}") from exc

    # -- what the status tells ------------------------------------------------------------------------------

    @property
    def oldest_seq(self) -> int:
        """The first buffered number of the current epoch (next_seq when none is buffered)."""
        if self._spans and self._spans[-1].epoch == self.epoch:
            return self._spans[-1].first
        return self.next_seq

    def past_epochs(self) -> tuple[EpochSpan, ...]:
        return tuple(EpochSpan(s.epoch, s.first, s.end) for s in self._spans if s.epoch != self.epoch)

    def epochs(self) -> tuple[EpochSpan, ...]:
        """Every buffered epoch, oldest first, the current one last (even while it has no record yet)."""
        return (*self.past_epochs(), EpochSpan(self.epoch, self.oldest_seq, self.next_seq))

    def __len__(self) -> int:
        return len(self._records)

    # -- producing -----------------------------------------------------------------------------------------

    def take_seq(self) -> int:
        """The sequence number for the next record (append it with `append`)."""
        if self.next_seq > MAX_SEQ:
            raise VirtualBoardError("the epoch's sequence number space (32 bits) is used up: reboot the board")
        return self.next_seq

    def append(self, seq: int, encoded: bytes) -> None:
        """Keep the current epoch's next record (written to the log before the caller sends it)."""
        if seq != self.next_seq:
            raise ValueError(f"records are appended in order: expected seq {self.next_seq}, got {seq}")
        if record_key(encoded) != (self.epoch, seq):
            raise ValueError(f"record {record_key(encoded)} is not ({self.epoch}, {seq}) of this epoch")
        self._keep(self.epoch, seq, encoded)
        self.next_seq += 1
        if self._log_fd is not None:
            try:
                os.write(self._log_fd, _ENTRY.pack(len(encoded)) + encoded)
                self._log_entries += 1
                if self._log_entries > COMPACT_FACTOR * self.capacity:
                    self._compact()
            except OSError as exc:
                raise VirtualBoardError(f"cannot write the record log in {self._dir}: {exc.strerror}") from exc

    def _keep(self, epoch: int, seq: int, encoded: bytes) -> None:
        if len(self._records) >= self.capacity:
            self._evict_oldest()
        if not self._spans or self._spans[-1].epoch != epoch:
            self._spans.append(_Span(epoch, seq, seq))
        self._spans[-1].end = seq + 1
        self._records.append(encoded)

    def _evict_oldest(self) -> None:
        self._records.popleft()
        oldest = self._spans[0]
        oldest.first += 1
        if oldest.first == oldest.end:
            self._spans.popleft()

    # -- backfill ------------------------------------------------------------------------------------------

    def iter_from(self, epoch: int, first_seq: int, end_seq: int) -> list[tuple[int, bytes]]:
        """Buffered records of `epoch` with first_seq <= seq < end_seq, oldest first (a snapshot)."""
        offset = 0
        for span in self._spans:
            if span.epoch == epoch:
                start, stop = max(first_seq, span.first), min(end_seq, span.end)
                base = offset - span.first
                return [(seq, self._records[base + seq]) for seq in range(start, stop)]
            offset += span.end - span.first
        return []

    def end_of(self, epoch: int) -> int | None:
        """One past the newest buffered number of `epoch` (next_seq for the current one); None if not buffered."""
        if epoch == self.epoch:
            return self.next_seq
        return next((s.end for s in self._spans if s.epoch == epoch), None)

    def close(self) -> None:
        """Stop writing the log (everything appended is already in it)."""
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    # -- state folder --------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self._dir is not None
        return self._dir / name

    def _device_id(self) -> int:
        return device_id_in(self._dir)

    def _boot(self) -> tuple[int, int]:
        """(boot count, epoch) of this boot, kept before any record of it is made."""
        buffered = {span.epoch for span in self._spans}
        if self._dir is None:
            return 1, random_epoch()
        path = self._path(STREAM_FILE)
        last_epoch, boots = None, 0
        if path.is_file():
            try:
                state = json.loads(path.read_text())
                last_epoch, boots = int(state["epoch"]), int(state["boot_count"])
            except (ValueError, KeyError, TypeError) as exc:
                raise VirtualBoardError(f"unreadable stream state {path}: {exc}") from exc
        legacy = self._path(LEGACY_STATE_FILE)
        if legacy.is_file():
            # The epoch-less layout kept numbers across boots and v1 records: its boot count is all that carries.
            try:
                boots = max(boots, int(json.loads(legacy.read_text())["boot_count"]))
            except (ValueError, KeyError, TypeError):
                pass
            legacy.unlink()
        epoch = random_epoch() if last_epoch is None else (last_epoch % MAX_EPOCH) + 1
        while epoch in buffered or epoch == NO_EPOCH:
            epoch = random_epoch()
        _write_atomically(path, json.dumps({"epoch": epoch, "boot_count": boots + 1}))
        return boots + 1, epoch

    def _load_log(self) -> None:
        for epoch, seq, encoded in read_log(self._path(LOG_FILE)):
            self._keep(epoch, seq, encoded)

    def _trim_past_epochs(self) -> None:
        while len(self._spans) > MAX_PAST_EPOCHS:
            oldest = self._spans[0].epoch
            while self._spans and self._spans[0].epoch == oldest:
                self._evict_oldest()

    def _compact(self) -> None:
        """Rewrite the log with only the buffered records, and reopen it for appending."""
        self.close()
        path = self._path(LOG_FILE)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as out:
            for encoded in self._records:
                out.write(_ENTRY.pack(len(encoded)) + encoded)
        os.replace(tmp, path)
        self._log_entries = len(self._records)
        self._log_fd = os.open(path, os.O_WRONLY | os.O_APPEND)


def device_id_in(state_dir: Path | None) -> int:
    """The board's 64-bit hardware id kept in `state_dir` (made on its first boot), random without a folder.

    The stream, the address and the SMP-only peripheral of a board without a model all use it.
    """
    if state_dir is None:
        return secrets.randbelow(MAX_DEVICE_ID) + 1
    path = state_dir / DEVICE_ID_FILE
    if path.is_file():
        text = path.read_text(errors="replace").strip()
        try:
            value = int(text, 16)
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_DEVICE_ID or len(text) != 16:
            raise VirtualBoardError(f"{path} holds {text[:40]!r}, not a 64-bit device id in 16 hex digits")
        return value
    # The first boot of this state folder: a new board, with its own id for good.
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.randbelow(MAX_DEVICE_ID) + 1
    _write_atomically(path, f"{value:016x}\n")
    return value
