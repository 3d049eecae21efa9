"""The virtual board's MCUboot, multi-image (CONFIG_UPDATEABLE_IMAGE_NUMBER=2): image 0 the application firmware,
image 1 the model. Each boot finishes an interrupted swap, picks each image's swap from its trailers, validates
the candidates (an invalid one has its whole secondary slot erased), checks image dependencies, swaps, and
validates what will run.

Followed: mcu-tools/mcuboot boot/bootutil/src/loader.c (context_boot_go: per-image boot_prepare_image_for_update,
then boot_verify_dependencies, then the swaps; boot_validate_slot erases an invalid secondary slot whole;
boot_verify_slot_dependency compares against the version the other image will run after this boot).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wedge.firmware.errors import ImageError
from wedge.firmware.image.firmware_image import FirmwareImage
from wedge.firmware.image.model_image import ModelImage, SignedImage, check_image, read_signed_image
from wedge.firmware.virtual.flash import Flash, Partition, SlotPair
from wedge.firmware.virtual.swap import read_progress, resume_swap, sectors_for, start_swap
from wedge.firmware.virtual.trailer import SwapType, erase_trailer, next_swap, read_trailer

APPLICATION, MODEL = 0, 1


@dataclass(frozen=True)
class Trust:
    """What the bootloader accepts: images signed by `public_key`, built for `board`; a model within its budget."""

    public_key: Ed25519PublicKey
    board: str
    model_budget_bytes: int


@dataclass(frozen=True)
class BootResult:
    """What MCUboot leaves to run: the application (None: nothing bootable, the board stays dark), the model in
    image 1's primary slot, which of them are unconfirmed tests, and why things happened."""

    firmware: FirmwareImage | None
    model: ModelImage | None
    testing: dict[int, bool]
    swaps: dict[int, SwapType]
    events: tuple[str, ...]


def slot_extent(flash: Flash, slot: Partition, data_bytes: int) -> int:
    """Bytes up to the last programmed byte of a slot's data pages (0: empty)."""
    data = flash.read(slot.offset, data_bytes)
    return len(data.rstrip(b"\xff"))


def slot_image(flash: Flash, pair: SlotPair, index: int) -> SignedImage | None:
    """The image in slot `index` (0 primary, 1 secondary) of `pair`, parsed but not verified; None if none."""
    slot = pair.slot(index)
    extent = slot_extent(flash, slot, pair.data_bytes)
    if extent == 0:
        return None
    try:
        return read_signed_image(flash.read(slot.offset, extent), slot.name, exact=False)
    except ImageError:
        return None


def _name(image: SignedImage | None) -> str:
    return "the image" if image is None else image.label


def refusal(image: SignedImage | None, pair: SlotPair, trust: Trust) -> str | None:
    """Why the bootloader would not boot `image` from `pair`, or None if it would."""
    if image is None:
        return "the slot holds no complete wedge image"
    if pair.role == "application" and not isinstance(image, FirmwareImage):
        return "it is not an application firmware image"
    if pair.role == "model" and not isinstance(image, ModelImage):
        return "it is not a model image"
    board = image.descriptor.board if isinstance(image, FirmwareImage) else image.manifest.board  # type: ignore[union-attr]
    if board != trust.board:
        return f"it was built for {board}, this board is {trust.board}"
    if image.size_bytes > pair.data_bytes:
        return f"it is {image.size_bytes:,} bytes; the slot holds {pair.data_bytes:,}"
    if isinstance(image, ModelImage) and image.size_bytes > trust.model_budget_bytes:
        return f"it is {image.size_bytes:,} bytes; the model slot holds {trust.model_budget_bytes:,}"
    check = check_image(image, trust.public_key)
    if check.problems:
        return check.problems[0]
    return None


def _pending_swap(flash: Flash, pair: SlotPair) -> SwapType:
    return next_swap(read_trailer(flash, pair.primary), read_trailer(flash, pair.secondary))


def _version_after(flash: Flash, pair: SlotPair, swap: SwapType) -> tuple[int, int, int] | None:
    """The version image `pair` runs after this boot's swaps (MCUboot's dependency check compares with it)."""
    image = slot_image(flash, pair, 1 if swap in (SwapType.TEST, SwapType.PERM, SwapType.REVERT) else 0)
    return None if image is None else image.version.as_tuple()[:3]


def boot(flash: Flash, trust: Trust) -> BootResult:
    """Run the bootloader once, as at power-on or reset."""
    layout = flash.layout
    events: list[str] = []
    swaps: dict[int, SwapType] = {pair.number: SwapType.NONE for pair in layout.images}
    progress = read_progress(flash)
    if progress is not None:
        # The swap a power cut interrupted is its image's swap this boot: finish it, and choose no other for it.
        resume_swap(flash, progress)
        events.append(f"MCUboot finished a {progress.swap_type.name.lower()} swap of image {progress.image} "
                      "interrupted by a power cut")
        swaps[progress.image] = progress.swap_type
    chosen: dict[int, SwapType] = {}
    for pair in layout.images:
        if progress is not None and pair.number == progress.image:
            continue
        swap = _pending_swap(flash, pair)
        if swap in (SwapType.TEST, SwapType.PERM):
            candidate = slot_image(flash, pair, 1)
            reason = refusal(candidate, pair, trust)
            if reason is not None:
                # boot_validate_slot: an invalid secondary image is erased, slot and trailer, never tried again.
                flash.erase(pair.secondary.offset, pair.secondary.size_bytes)
                events.append(f"MCUboot refused {_name(candidate)} in image {pair.number}'s secondary slot: {reason}")
                swap = SwapType.NONE
        chosen[pair.number] = swap
    for pair in layout.images:
        swap = chosen.get(pair.number, SwapType.NONE)
        if swap not in (SwapType.TEST, SwapType.PERM):
            continue
        candidate = slot_image(flash, pair, 1)
        for dependency in candidate.dependencies if candidate is not None else ():
            other = layout.image(dependency.image) if dependency.image < len(layout.images) else None
            runs = None if other is None else _version_after(flash, other, chosen.get(other.number, SwapType.NONE))
            if runs is None or runs < dependency.minimum.as_tuple()[:3]:
                running = "nothing" if runs is None else ".".join(map(str, runs))
                events.append(f"MCUboot did not swap in {_name(candidate)}: it needs image {dependency.image} at "
                              f"{dependency.minimum} or later, which will run {running}")
                chosen[pair.number] = SwapType.NONE
                break
    for pair in layout.images:
        swap = chosen.get(pair.number, SwapType.NONE)
        if swap != SwapType.NONE:
            primary, secondary = slot_image(flash, pair, 0), slot_image(flash, pair, 1)
            sectors = sectors_for(pair, 0 if primary is None else primary.size_bytes,
                                  0 if secondary is None else secondary.size_bytes)
            start_swap(flash, pair, swap, sectors)
            swaps[pair.number] = swap
    firmware: FirmwareImage | None = None
    model: ModelImage | None = None
    testing: dict[int, bool] = {}
    for pair in layout.images:
        image = slot_image(flash, pair, 0)
        reason = refusal(image, pair, trust)
        if reason is not None:
            if image is not None or pair.role == "application":
                events.append(f"MCUboot will not boot {_name(image)} in image {pair.number}'s primary slot: {reason}")
            image = None
        trailer = read_trailer(flash, pair.primary)
        testing[pair.number] = image is not None and trailer.magic and trailer.copy_done and not trailer.image_ok
        if isinstance(image, FirmwareImage):
            firmware = image
        elif isinstance(image, ModelImage):
            model = image
    return BootResult(firmware=firmware, model=model, testing=testing, swaps=swaps, events=tuple(events))


def erase_request(flash: Flash, pair: SlotPair) -> None:
    """Drop a pending swap request of `pair` (its secondary trailer)."""
    erase_trailer(flash, pair.secondary)
