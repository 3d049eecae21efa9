"""Checks made before a single byte is sent: is the image whole and signed, for this board, within its budgets?

Budgets come from the device when it reports them (wedge firmware), else from the board profile of its name.
"""

from __future__ import annotations

import re

from wedge.boards import BoardError
from wedge.boards import load as load_board
from wedge.firmware.errors import FlashError, ImageError
from wedge.firmware.flash.session import DeviceIdentity, SlotState
from wedge.firmware.image.model_image import ModelImage, check_image


def _budgets(identity: DeviceIdentity) -> tuple[int | None, int | None]:
    if identity.model_slot_bytes is not None and identity.arena_bytes is not None:
        return identity.model_slot_bytes, identity.arena_bytes
    try:
        board = load_board(identity.board)
    except BoardError:
        return None, None
    return board.budgets.model_slot_bytes, board.budgets.arena_bytes


def check_integrity(image: ModelImage, name: str) -> None:
    """The image is whole and signed by the key it names (no device needed to tell)."""
    check = check_image(image)
    if check.problems:
        raise ImageError(f"{name} is corrupt: {check.problems[0]}")


def preflight(image: ModelImage, name: str, identity: DeviceIdentity) -> None:
    """Raise ImageError/FlashError for the first reason this device must not get this image."""
    check_integrity(image, name)
    manifest = image.manifest
    if manifest.board != identity.board:
        raise FlashError(f"{name} was built for {manifest.board}, but the device on {identity.port} is {identity.board}")
    slot_bytes, arena_bytes = _budgets(identity)
    if slot_bytes is not None and image.size_bytes > slot_bytes:
        raise FlashError(
            f"{name} is {image.size_bytes:,} bytes; {identity.board}'s model slot holds {slot_bytes:,}"
        )
    if arena_bytes is not None and manifest.arena_bytes > arena_bytes:
        raise FlashError(
            f"{manifest.model_name} needs {manifest.arena_bytes:,} bytes of TFLM arena; {identity.board} has {arena_bytes:,}"
        )
    if identity.key_hash is not None and image.key_hash != identity.key_hash:
        raise FlashError(
            f"{name} is signed with key {image.key_hash.hex()[:16]}, but the board's bootloader trusts "
            f"key {identity.key_hash.hex()[:16]}"
        )


def check_upgrade(image: ModelImage, name: str, running: SlotState | None) -> None:
    """With --upgrade-only: refuse an image that is not newer (major.minor.revision, as Zephyr compares)."""
    if running is None:
        return
    running_version = tuple(int(part) for part in re.findall(r"\d+", running.version)[:3])
    if image.version.as_tuple()[:3] <= running_version:
        raise FlashError(
            f"{name} is version {image.version}, not newer than the running {running.version} (--upgrade-only)"
        )
