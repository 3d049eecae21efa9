"""MCUboot's slot trailer, in the last page of each slot: boot magic, image_ok, copy_done and swap type.

The bootloader reads the trailers to choose between no swap, a test or permanent swap, and a revert; the SMP
image group writes them to mark an image for test or to confirm the running one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from imgtool import image as imgtool_image

from wedge.firmware.virtual.flash import Flash, Partition

# The 16-byte boot magic MCUboot writes at the very end of a slot (max write alignment 8), as imgtool has it.
BOOT_MAGIC: Final[bytes] = bytes(imgtool_image.Image().boot_magic)
ALIGN_BYTES: Final[int] = 8
FLAG_SET: Final[int] = 0x01
# Offsets of the fields from the end of the slot, in MCUboot's order.
_MAGIC_FROM_END: Final[int] = 16
_IMAGE_OK_FROM_END: Final[int] = _MAGIC_FROM_END + ALIGN_BYTES
_COPY_DONE_FROM_END: Final[int] = _IMAGE_OK_FROM_END + ALIGN_BYTES
_SWAP_INFO_FROM_END: Final[int] = _COPY_DONE_FROM_END + ALIGN_BYTES


class SwapType(IntEnum):
    """MCUboot's BOOT_SWAP_TYPE_* values."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4


@dataclass(frozen=True)
class Trailer:
    """One slot's trailer as read from flash."""

    magic: bool
    image_ok: bool
    copy_done: bool
    swap_type: SwapType | None


def read_trailer(flash: Flash, slot: Partition) -> Trailer:
    def field(from_end: int, length: int = ALIGN_BYTES) -> bytes:
        return flash.read(slot.end - from_end, length)

    swap_byte = field(_SWAP_INFO_FROM_END)[0]
    return Trailer(
        magic=field(_MAGIC_FROM_END, 16) == BOOT_MAGIC,
        image_ok=field(_IMAGE_OK_FROM_END)[0] == FLAG_SET,
        copy_done=field(_COPY_DONE_FROM_END)[0] == FLAG_SET,
        swap_type=SwapType(swap_byte) if swap_byte in SwapType._value2member_map_ else None,
    )


def _set(flash: Flash, slot: Partition, from_end: int, value: int) -> None:
    offset = slot.end - from_end
    if flash.read(offset, 1)[0] == value:
        return
    flash.write(offset, bytes([value]) + bytes([0xFF]) * (ALIGN_BYTES - 1))


def erase_trailer(flash: Flash, slot: Partition) -> None:
    flash.erase(slot.end - flash.layout.page_bytes, flash.layout.page_bytes)


def write_trailer(flash: Flash, slot: Partition, *, swap_type: SwapType, image_ok: bool, copy_done: bool) -> None:
    """Program a trailer into an erased trailer page, flags first and magic last (the magic makes it count)."""
    _set(flash, slot, _SWAP_INFO_FROM_END, int(swap_type))
    if copy_done:
        _set(flash, slot, _COPY_DONE_FROM_END, FLAG_SET)
    if image_ok:
        _set(flash, slot, _IMAGE_OK_FROM_END, FLAG_SET)
    if flash.read(slot.end - _MAGIC_FROM_END, 16) != BOOT_MAGIC:
        flash.write(slot.end - _MAGIC_FROM_END, BOOT_MAGIC)


def set_image_ok(flash: Flash, slot: Partition) -> None:
    """Confirm the image in `slot` (boot_set_confirmed)."""
    _set(flash, slot, _IMAGE_OK_FROM_END, FLAG_SET)


def next_swap(primary: Trailer, secondary: Trailer) -> SwapType:
    """MCUboot's swap decision from the two trailers."""
    if secondary.magic:
        return SwapType.PERM if secondary.image_ok else SwapType.TEST
    if primary.magic and primary.copy_done and not primary.image_ok:
        return SwapType.REVERT
    return SwapType.NONE
