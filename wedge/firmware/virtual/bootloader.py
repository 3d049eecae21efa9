"""The virtual board's MCUboot: finish an interrupted swap, pick the swap from the trailers, validate, swap, boot.

An image is booted only if its SHA-256 and ed25519 signature verify against the provisioned key, it was built
for this board, and it fits the board's model slot budget; a refused test image is never swapped in.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wedge.firmware.errors import ImageError
from wedge.firmware.image.model_image import ModelImage, check_image, read_model_image
from wedge.firmware.virtual.flash import Flash, Partition
from wedge.firmware.virtual.swap import read_progress, resume_swap, sectors_for, start_swap
from wedge.firmware.virtual.trailer import SwapType, erase_trailer, next_swap, read_trailer


@dataclass(frozen=True)
class Trust:
    """What the bootloader accepts: images signed by `public_key`, built for `board`, at most `max_image_bytes`."""

    public_key: Ed25519PublicKey
    board: str
    max_image_bytes: int


@dataclass(frozen=True)
class BootResult:
    """What booted: the primary slot's image (None: no valid model), whether it is an unconfirmed test, and why."""

    image: ModelImage | None
    testing: bool
    swap: SwapType
    events: tuple[str, ...]


def slot_extent(flash: Flash, slot: Partition) -> int:
    """Bytes up to the last programmed byte of a slot's data pages (0: empty)."""
    data = flash.read(slot.offset, flash.layout.slot_data_bytes)
    return len(data.rstrip(b"\xff"))


def slot_image(flash: Flash, slot: Partition) -> ModelImage | None:
    """The image in a slot, parsed but not verified; None if the slot holds no wedge image."""
    extent = slot_extent(flash, slot)
    if extent == 0:
        return None
    try:
        return read_model_image(flash.read(slot.offset, extent), slot.name, exact=False)
    except ImageError:
        return None


def refusal(image: ModelImage | None, trust: Trust) -> str | None:
    """Why the bootloader would not boot `image`, or None if it would."""
    if image is None:
        return "the slot holds no complete wedge image"
    if image.manifest.board != trust.board:
        return f"it was built for {image.manifest.board}, this board is {trust.board}"
    if image.size_bytes > trust.max_image_bytes:
        return f"it is {image.size_bytes:,} bytes; the model slot holds {trust.max_image_bytes:,}"
    check = check_image(image, trust.public_key)
    if check.problems:
        return check.problems[0]
    return None


def _choose_swap(flash: Flash, trust: Trust, events: list[str]) -> SwapType:
    """Read the trailers, refuse an invalid candidate, and run the swap they ask for."""
    layout = flash.layout
    swap = next_swap(read_trailer(flash, layout.primary), read_trailer(flash, layout.secondary))
    if swap in (SwapType.TEST, SwapType.PERM):
        candidate = slot_image(flash, layout.secondary)
        reason = refusal(candidate, trust)
        if reason is not None:
            # As MCUboot does with an invalid secondary image: drop its request so it is never tried again.
            erase_trailer(flash, layout.secondary)
            name = "the image" if candidate is None else f"{candidate.manifest.model_name} {candidate.manifest.model_version}"
            events.append(f"MCUboot refused {name} in slot 1: {reason}")
            return SwapType.NONE
    if swap != SwapType.NONE:
        sectors = sectors_for(layout, slot_extent(flash, layout.primary), slot_extent(flash, layout.secondary))
        start_swap(flash, swap, sectors)
    return swap


def boot(flash: Flash, trust: Trust) -> BootResult:
    """Run the bootloader once, as at power-on or reset."""
    layout = flash.layout
    events: list[str] = []
    progress = read_progress(flash)
    if progress is not None:
        # The swap a power cut interrupted is this boot's swap: finish it, and choose no other.
        resume_swap(flash, progress)
        events.append(f"MCUboot finished a {progress.swap_type.name.lower()} swap interrupted by a power cut")
        swap = progress.swap_type
    else:
        swap = _choose_swap(flash, trust, events)
    image = slot_image(flash, layout.primary)
    if image is not None:
        reason = refusal(image, trust)
        if reason is not None:
            events.append(f"MCUboot will not boot the image in slot 0: {reason}")
            image = None
    primary = read_trailer(flash, layout.primary)
    testing = image is not None and primary.magic and primary.copy_done and not primary.image_ok
    return BootResult(image=image, testing=testing, swap=swap, events=tuple(events))
