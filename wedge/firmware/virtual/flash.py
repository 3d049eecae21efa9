"""A file-backed NOR flash for the virtual board: page erase, write only to erased bytes, MCUboot partitions.

Writes go straight to the file (os.pwrite), so they survive the process dying; a power cut armed on the flash
stops the process in the middle of a write or erase, leaving exactly the half-done state a real cut would.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from wedge.boards import Board
from wedge.firmware.errors import VirtualBoardError

ERASED_BYTE: Final[int] = 0xFF
# nRF52840 and nRF5340 erase 4 KiB pages; MCUboot's swap moves one such sector at a time.
PAGE_BYTES: Final[int] = 4096
# The exit status of a process whose power was cut (EX_TEMPFAIL): distinguishable from a crash or a signal.
POWER_CUT_EXIT_CODE: Final[int] = 75
# One swap-status record is 8 bytes (MCUboot's max write alignment) and a swap writes 3 per sector plus a few.
STATUS_RECORD_BYTES: Final[int] = 8


class FlashFault(VirtualBoardError):
    """The firmware asked the flash for something real NOR flash cannot do (a bug, not a user error)."""


@dataclass(frozen=True)
class Partition:
    """A named range of the flash."""

    name: str
    offset: int
    size_bytes: int

    @property
    def end(self) -> int:
        return self.offset + self.size_bytes


@dataclass(frozen=True)
class SlotPair:
    """One MCUboot image's primary and secondary slots (MCUboot numbers them 2 x image and 2 x image + 1)."""

    number: int
    role: str
    primary: Partition
    secondary: Partition
    page_bytes: int

    @property
    def slot_bytes(self) -> int:
        return self.primary.size_bytes

    @property
    def data_bytes(self) -> int:
        """What an image may use: the slot less its trailer page."""
        return self.primary.size_bytes - self.page_bytes

    @property
    def max_sectors(self) -> int:
        return self.data_bytes // self.page_bytes

    def slot(self, index: int) -> Partition:
        return self.primary if index == 0 else self.secondary


@dataclass(frozen=True)
class FlashLayout:
    """The chip's flash as the board profile lays it out: one slot pair per MCUboot image, then a scratch sector
    and the swap-status journal (kept after the chip's flash: they stand for MCUboot's scratch partition and the
    status it records in the trailers).

    The last page of each slot is its trailer (magic and flags), so an image may use the pages before it.
    """

    page_bytes: int
    images: tuple[SlotPair, ...]
    scratch: Partition
    status: Partition

    @property
    def total_bytes(self) -> int:
        return self.status.end

    def image(self, number: int) -> SlotPair:
        for pair in self.images:
            if pair.number == number:
                return pair
        raise ValueError(f"no MCUboot image {number}")

    def slot(self, index: int) -> Partition:
        """MCUboot slot `index` (0/1 image 0, 2/3 image 1), as img_mgmt numbers slots."""
        return self.image(index // 2).slot(index % 2)

    @property
    def slot_count(self) -> int:
        return 2 * len(self.images)

    @staticmethod
    def for_board(board: Board, page_bytes: int = PAGE_BYTES) -> FlashLayout:
        if not board.flashing.images:
            raise VirtualBoardError(f"{board.name} lists no MCUboot images in its profile ([[flashing.images]]): "
                                    "it cannot be emulated")
        pairs = []
        for slots in board.flashing.images:
            size = slots.slot_size_bytes // page_bytes * page_bytes
            if size < 2 * page_bytes or slots.primary_offset % page_bytes or slots.secondary_offset % page_bytes:
                raise VirtualBoardError(f"{board.name}'s image {slots.number} slots are not {page_bytes}-byte pages")
            pairs.append(SlotPair(slots.number, slots.role, Partition(f"image-{slots.number}-primary",
                                                                      slots.primary_offset, size),
                                  Partition(f"image-{slots.number}-secondary", slots.secondary_offset, size),
                                  page_bytes))
        chip_end = math.ceil(board.memory.flash_bytes / page_bytes) * page_bytes
        max_sectors = max(pair.max_sectors for pair in pairs)
        status_records = 3 * max_sectors + 8
        status_bytes = math.ceil(status_records * STATUS_RECORD_BYTES / page_bytes) * page_bytes
        scratch = Partition("scratch", chip_end, page_bytes)
        status = Partition("swap-status", scratch.end, status_bytes)
        return FlashLayout(page_bytes, tuple(pairs), scratch, status)


def power_off() -> NoReturn:
    """The power goes: the process ends on the spot, mid-write, with POWER_CUT_EXIT_CODE."""
    os._exit(POWER_CUT_EXIT_CODE)


_power_off = power_off


class FlashFaults:
    """Faults of the flash, changed at run time from the control socket (hence the lock)."""

    def __init__(self, *, power_cut_after_bytes: int | None = None, op_delay_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.power_cut_after_bytes = power_cut_after_bytes
        self.op_delay_s = op_delay_s
        self._counted = 0

    def arm_power_cut(self, after_bytes: int | None) -> None:
        with self._lock:
            self.power_cut_after_bytes = after_bytes
            self._counted = 0

    def allowance(self, nbytes: int) -> int | None:
        """How many of the next `nbytes` bytes are written before the power goes (None: all, no cut)."""
        with self._lock:
            if self.power_cut_after_bytes is None:
                return None
            left = self.power_cut_after_bytes - self._counted
            self._counted += nbytes
            if left >= nbytes:
                return None
            return max(0, left)


class Flash:
    """NOR flash in a file: erase sets whole pages to 0xFF, a write may only program erased bytes."""

    def __init__(
        self,
        path: Path,
        layout: FlashLayout,
        faults: FlashFaults | None = None,
        on_power_cut: Callable[[], NoReturn] = _power_off,
    ) -> None:
        self.layout = layout
        self.faults = faults or FlashFaults()
        self._on_power_cut = on_power_cut
        self.bytes_written = 0
        fresh = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise VirtualBoardError(f"cannot open the board's flash file {path}: {exc.strerror or exc}") from exc
        size = os.fstat(self._fd).st_size
        if fresh or size == 0:
            os.pwrite(self._fd, bytes([ERASED_BYTE]) * layout.total_bytes, 0)
        elif size != layout.total_bytes:
            os.close(self._fd)
            raise VirtualBoardError(
                f"{path} holds {size} bytes of flash but this board has {layout.total_bytes}: "
                "it belongs to another board profile (use another --state folder)"
            )

    def close(self) -> None:
        os.close(self._fd)

    def read(self, offset: int, length: int) -> bytes:
        self._check_range(offset, length)
        return os.pread(self._fd, length, offset)

    def write(self, offset: int, data: bytes) -> None:
        """Program erased bytes; programming a byte twice is a firmware bug on NOR flash."""
        self._check_range(offset, len(data))
        current = os.pread(self._fd, len(data), offset)
        if current.count(ERASED_BYTE) != len(current):
            raise FlashFault(f"write to non-erased flash at 0x{offset:x} ({len(data)} bytes)")
        self._program(offset, data)
        self.bytes_written += len(data)

    def erase(self, offset: int, length: int) -> None:
        """Erase whole pages."""
        page = self.layout.page_bytes
        if offset % page or length % page:
            raise FlashFault(f"erase of 0x{offset:x}+{length} is not page aligned")
        self._check_range(offset, length)
        for start in range(offset, offset + length, page):
            self._program(start, bytes([ERASED_BYTE]) * page)

    def is_erased(self, offset: int, length: int) -> bool:
        data = self.read(offset, length)
        return data.count(ERASED_BYTE) == len(data)

    def _program(self, offset: int, data: bytes) -> None:
        if self.faults.op_delay_s:
            # A slow flash: the firmware is busy for this long and answers nothing meanwhile.
            time.sleep(self.faults.op_delay_s)
        allowed = self.faults.allowance(len(data))
        if allowed is not None:
            os.pwrite(self._fd, data[:allowed], offset)
            self._on_power_cut()
        os.pwrite(self._fd, data, offset)

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.layout.total_bytes:
            raise FlashFault(f"flash access 0x{offset:x}+{length} is outside the {self.layout.total_bytes}-byte flash")
