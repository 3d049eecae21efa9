"""MCUboot's swap with scratch, journaled so that a power cut at any byte leaves a swap the next boot finishes.

One image's slot pair swaps at a time (MCUboot's multi-image loop, boot/bootutil/src/loader.c context_boot_go,
swaps image by image); the journal names the image. Each sector moves in three steps (secondary -> scratch, primary -> secondary, scratch -> primary), and every
step's completion is appended to the swap-status area; a step that was cut is redone from inputs it never
modified. Trailers are rewritten last, then the journal is erased.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from wedge.firmware.virtual.flash import STATUS_RECORD_BYTES, Flash, SlotPair
from wedge.firmware.virtual.trailer import SwapType, erase_trailer, write_trailer

_RECORD: Final = struct.Struct("<BBHBBBB")
_RECORD_MARK: Final[int] = 0xA5
assert _RECORD.size == STATUS_RECORD_BYTES


class _Kind(IntEnum):
    BEGIN = 1
    STEP = 2
    TRAILERS = 3


@dataclass(frozen=True)
class _Record:
    kind: _Kind
    index: int
    step: int
    image: int = 0


@dataclass(frozen=True)
class SwapProgress:
    """An unfinished swap found in the journal: its type, sector count, and the last step that completed."""

    image: int
    swap_type: SwapType
    sectors: int
    done_sector: int
    done_step: int
    trailers_done: bool
    records: int


def _checksum(payload: bytes) -> int:
    return (sum(payload) & 0xFF) ^ 0x5A


def _encode(kind: _Kind, index: int, step: int, image: int = 0) -> bytes:
    head = _RECORD.pack(_RECORD_MARK, kind, index, step, image, 0, 0)[:-1]
    return head + bytes([_checksum(head)])


def _records(flash: Flash) -> tuple[list[_Record], int]:
    """The valid records in order, and how many record slots are used (a torn record uses its slot)."""
    status = flash.layout.status
    raw = flash.read(status.offset, status.size_bytes)
    records: list[_Record] = []
    used = 0
    for used_slot in range(status.size_bytes // STATUS_RECORD_BYTES):
        chunk = raw[used_slot * STATUS_RECORD_BYTES : (used_slot + 1) * STATUS_RECORD_BYTES]
        if chunk.count(0xFF) == len(chunk):
            break
        used = used_slot + 1
        mark, kind, index, step, image, _, check = _RECORD.unpack(chunk)
        if mark != _RECORD_MARK or check != _checksum(chunk[:-1]) or kind not in _Kind._value2member_map_:
            continue  # torn by a power cut mid-write: that step is redone
        records.append(_Record(_Kind(kind), index, step, image))
    return records, used


def read_progress(flash: Flash) -> SwapProgress | None:
    """The swap in progress, or None when the journal holds none."""
    records, used = _records(flash)
    if not records or records[0].kind != _Kind.BEGIN:
        return None
    begin = records[0]
    done_sector, done_step, trailers = 0, 0, False
    for record in records[1:]:
        if record.kind == _Kind.STEP:
            done_sector, done_step = record.index, record.step
        elif record.kind == _Kind.TRAILERS:
            trailers = True
    return SwapProgress(begin.image, SwapType(begin.step), begin.index, done_sector, done_step, trailers, used)


class _Journal:
    def __init__(self, flash: Flash, used: int) -> None:
        self._flash = flash
        self._next = used

    def append(self, kind: _Kind, index: int = 0, step: int = 0, image: int = 0) -> None:
        status = self._flash.layout.status
        offset = status.offset + self._next * STATUS_RECORD_BYTES
        if offset + STATUS_RECORD_BYTES > status.end:
            raise RuntimeError("the swap-status area is full")
        self._flash.write(offset, _encode(kind, index, step, image))
        self._next += 1


def sectors_for(pair: SlotPair, primary_bytes: int, secondary_bytes: int) -> int:
    """Sectors a swap must move to exchange images of these sizes (the trailer page is handled apart)."""
    return min(pair.max_sectors, math.ceil(max(primary_bytes, secondary_bytes, 1) / pair.page_bytes))


def start_swap(flash: Flash, pair: SlotPair, swap_type: SwapType, sectors: int) -> None:
    """Begin and run a swap of `sectors` sectors of one image's slot pair."""
    layout = flash.layout
    flash.erase(layout.status.offset, layout.status.size_bytes)
    journal = _Journal(flash, 0)
    journal.append(_Kind.BEGIN, sectors, int(swap_type), pair.number)
    _run(flash, pair, journal, SwapProgress(pair.number, swap_type, sectors, 0, 0, False, 1))


def resume_swap(flash: Flash, progress: SwapProgress) -> None:
    """Finish a swap a power cut interrupted."""
    _run(flash, flash.layout.image(progress.image), _Journal(flash, progress.records), progress)


def _copy(flash: Flash, source: int, target: int) -> None:
    page = flash.layout.page_bytes
    flash.erase(target, page)
    data = flash.read(source, page)
    if data.count(0xFF) != page:
        flash.write(target, data)


def _run(flash: Flash, pair: SlotPair, journal: _Journal, progress: SwapProgress) -> None:
    layout = flash.layout
    page = layout.page_bytes
    sector, step = progress.done_sector, progress.done_step
    if not progress.trailers_done:
        while sector < progress.sectors:
            step += 1
            if step > 3:
                sector, step = sector + 1, 1
                if sector >= progress.sectors:
                    break
            primary = pair.primary.offset + sector * page
            secondary = pair.secondary.offset + sector * page
            if step == 1:
                _copy(flash, secondary, layout.scratch.offset)
            elif step == 2:
                _copy(flash, primary, secondary)
            else:
                _copy(flash, layout.scratch.offset, primary)
            journal.append(_Kind.STEP, sector, step, pair.number)
        _rewrite_trailers(flash, pair, progress.swap_type)
        journal.append(_Kind.TRAILERS, 0, 0, pair.number)
    flash.erase(layout.status.offset, layout.status.size_bytes)


def _rewrite_trailers(flash: Flash, pair: SlotPair, swap_type: SwapType) -> None:
    """After the data moved: the primary's trailer says what booted; the secondary's is cleared."""
    erase_trailer(flash, pair.primary)
    erase_trailer(flash, pair.secondary)
    # A test swap leaves image_ok unset, so the next boot reverts unless the running image confirms itself.
    write_trailer(flash, pair.primary, swap_type=swap_type, image_ok=swap_type != SwapType.TEST, copy_done=True)
