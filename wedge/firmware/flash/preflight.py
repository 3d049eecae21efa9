"""Checks made before a single byte is sent: is the image whole and signed, for this board and this MCUboot
image, within the slot, and can the running firmware run it (ops, arena, runtime version)?

What the firmware offers comes from its descriptor: reported by wedge's SMP group, or read from the application
image file the user names (`--firmware`) once its hash matches what the device runs. Without either, the board
profile's budgets stand in and the notes say what could not be checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from wedge.boards import Board, BoardError
from wedge.boards import load as load_board
from wedge.firmware.errors import FlashError, ImageError
from wedge.firmware.flash.session import DeviceIdentity, SlotState
from wedge.firmware.image.firmware_image import FirmwareDescriptor, FirmwareImage
from wedge.firmware.image.manifest import Manifest
from wedge.firmware.image.model_image import ModelImage, SignedImage, check_image

# How many of the firmware's registered ops an error lists before "...".
_OPS_SHOWN = 12


@dataclass(frozen=True)
class Compatibility:
    """What the preflight found out: the firmware descriptor it used (if any) and what it could not check."""

    descriptor: FirmwareDescriptor | None
    notes: tuple[str, ...]


def sensor_warning(board: Board, manifest: Manifest) -> str | None:
    """A warning when no sensor of `board` gives the model its input, else None.

    The board's always-on loop feeds a model input from the sensor whose window has the input's size (else it
    resamples its first sensor), so a PPG model on camera glasses would classify camera pixels. It is a warning,
    not a refusal: benching a model on a board without its sensor, its inputs sent over the DUT protocol, is how
    MLPerf Tiny measures every model, and the bench flashes that way.
    """
    if not manifest.inputs or not board.sensors:
        return None
    values = prod(max(dim, 1) for dim in manifest.inputs[0].shape)  # -1 (dynamic) is the batch: one at a time
    if board.sensor_for_values(values) is not None:
        return None
    windows = ", ".join(f"{s.name} ({s.kind}) {' x '.join(str(d) for d in s.window_shape)}" for s in board.sensors)
    fallback = board.sensors[0]
    return (f"warning: no sensor of {board.name} gives {manifest.model_name} its input ({values:,} values a "
            f"window; the board's windows: {windows}): on the board its always-on loop would run it on resampled "
            f"{fallback.name} data. Fine for a bench run over the DUT protocol, not for the product")


def check_integrity(image: SignedImage, name: str) -> None:
    """The image is whole and signed by the key it names (no device needed to tell)."""
    check = check_image(image)
    if check.problems:
        raise ImageError(f"{name} is corrupt: {check.problems[0]}")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def running(states: Sequence[SlotState], image: int) -> SlotState | None:
    """The primary (active) slot of MCUboot image `image`."""
    return next((s for s in states if s.image == image and s.slot == 0), None)


def preflight(image: SignedImage, name: str, identity: DeviceIdentity, states: Sequence[SlotState], *,
              target_image: int, firmware_file: FirmwareImage | None = None) -> Compatibility:
    """Raise ImageError/FlashError for the first reason this device must not get this image."""
    check_integrity(image, name)
    if image.image_number != target_image:
        raise FlashError(f"{name} is packed for MCUboot image {image.image_number}, not image {target_image}")
    try:
        board = load_board(identity.board)
    except BoardError as exc:
        raise FlashError(str(exc)) from None
    slots = board.flashing.image(target_image)
    if board.flashing.images and slots is None:
        raise FlashError(f"{identity.board} has no MCUboot image {target_image}")
    if identity.key_hash is not None and image.key_hash != identity.key_hash:
        raise FlashError(f"{name} is signed with key {image.key_hash.hex()[:16]}, but the board's bootloader trusts "
                         f"key {identity.key_hash.hex()[:16]}")
    if isinstance(image, FirmwareImage):
        if image.descriptor.board != identity.board:
            raise FlashError(f"{name} was built for {image.descriptor.board}, but the device on {identity.port} is "
                             f"{identity.board}")
        if slots is not None and image.size_bytes > slots.slot_size_bytes:
            raise FlashError(f"{name} is {image.size_bytes:,} bytes; image {target_image}'s slot holds "
                             f"{slots.slot_size_bytes:,}")
        return Compatibility(image.descriptor, ())
    assert isinstance(image, ModelImage)
    manifest = image.manifest
    if manifest.board != identity.board:
        raise FlashError(f"{name} was built for {manifest.board}, but the device on {identity.port} is {identity.board}")
    budget = identity.model_slot_bytes or board.budgets.model_slot_bytes
    if image.size_bytes > budget:
        raise FlashError(f"{name} is {image.size_bytes:,} bytes; {identity.board}'s model slot holds {budget:,}")
    descriptor, notes = _descriptor(identity, states, firmware_file)
    mismatch = sensor_warning(board, manifest)
    if mismatch is not None:
        notes.append(mismatch)
    app = running(states, 0)
    for dependency in image.dependencies:
        runs = running(states, dependency.image)
        if runs is None or _version(runs.version) < dependency.minimum.as_tuple()[:3]:
            have = "nothing" if runs is None else runs.version
            raise FlashError(f"{manifest.model_name} needs image {dependency.image} (the application) at "
                             f"{dependency.minimum} or later; the device runs {have}")
    if descriptor is not None:
        label = f"firmware {descriptor.version}"
        if manifest.ops is not None:
            missing = sorted(set(manifest.ops) - set(descriptor.ops))
            if missing:
                shown = ", ".join(descriptor.ops[:_OPS_SHOWN]) + (", ..." if len(descriptor.ops) > _OPS_SHOWN else "")
                raise FlashError(f"model needs ops {', '.join(missing)}; {label} registers {shown}")
        else:
            notes.append(f"{name} has a format-1 manifest without ops: not checked against the firmware")
        if manifest.arena_bytes > descriptor.arena_bytes:
            raise FlashError(f"{manifest.model_name} needs {manifest.arena_bytes:,} bytes of TFLM arena; {label} "
                             f"has {descriptor.arena_bytes:,}")
        if descriptor.model_image != target_image:
            raise FlashError(f"{label} loads its model from image {descriptor.model_image}, not image {target_image}")
    else:
        arena = identity.arena_bytes or board.budgets.arena_bytes
        if manifest.arena_bytes > arena:
            raise FlashError(f"{manifest.model_name} needs {manifest.arena_bytes:,} bytes of TFLM arena; "
                             f"{identity.board} has {arena:,}")
        notes.append("the device does not describe its firmware (no wedge SMP group): the model's ops were not "
                     f"checked{'' if app is None else f' against its application {app.version}'} "
                     "(pass --firmware FW.img to check them)")
    return Compatibility(descriptor, tuple(notes))


def _descriptor(identity: DeviceIdentity, states: Sequence[SlotState],
                firmware_file: FirmwareImage | None) -> tuple[FirmwareDescriptor | None, list[str]]:
    if firmware_file is not None:
        app = running(states, 0)
        if app is None or app.hash != firmware_file.image_hash:
            raise FlashError(f"the device does not run {firmware_file.label} (the --firmware image): its "
                             f"application is {'nothing' if app is None else app.version}")
        return firmware_file.descriptor, []
    return identity.descriptor, []


def check_upgrade(image: SignedImage, name: str, active: SlotState | None) -> None:
    """With --upgrade-only: refuse an image that is not newer (major.minor.revision, as Zephyr compares)."""
    if active is None:
        return
    if image.version.as_tuple()[:3] <= _version(active.version):
        raise FlashError(f"{name} is version {image.version}, not newer than the running {active.version} "
                         "(--upgrade-only)")
