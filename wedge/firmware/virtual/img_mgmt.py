"""The SMP image group of the virtual board, for two MCUboot images, as Zephyr's img_mgmt answers it.

Followed: zephyrproject-rtos/zephyr subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt_state.c (img_mgmt_state_read:
every image's two slots with `image`, `slot`, version, hash and all five flags, the active slot of each image
flagged active; img_mgmt_set_next_boot_slot: the test/confirm rules, IMAGE_CONFIRMATION_DENIED for the primary
slot of an image that is not the running application unless ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY,
IMAGE_ALREADY_PENDING while a test is pending; img_mgmt_slot_in_use) and img_mgmt.c (upload: `image` defaults to
0, `len` bounded by the target slot, an upload of the same `sha` resumes at its offset; erase).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import IMAGE_HEADER_BYTES, header_version
from wedge.firmware.protocol.smp_messages import (
    IMG_MGMT_ERR,
    ImageEraseRequest,
    ImageStatesReadRequest,
    ImageStatesWriteRequest,
    ImageUploadWriteRequest,
    RawHeader,
    encode_response,
    error_response,
)
from wedge.firmware.virtual.bootloader import slot_image
from wedge.firmware.virtual.flash import Flash, SlotPair
from wedge.firmware.virtual.trailer import SwapType, next_swap, read_trailer, set_image_ok, write_trailer

# The board's console: one line a flash, test request and confirmation (`wedge emulate` prints them on stderr).
logger = logging.getLogger(__name__)

SHA256_BYTES: Final[int] = 32
# The running application is image 0 (img_mgmt_active_image()).
ACTIVE_IMAGE: Final[int] = 0


@dataclass
class _Upload:
    image: int
    size: int
    sha: bytes
    off: int
    erased_to: int


@dataclass(frozen=True)
class ImageGroupOptions:
    """The img_mgmt Kconfig choices of the firmware: CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_ANY
    (default n; wedge's application sets it, so a host may confirm a model it saw pass its self-test)."""

    allow_confirm_non_active_any: bool = False


def _version_text(version: Any) -> str:
    # img_mgmt_ver_str: major.minor.revision, and .build only when it is set.
    return f"{version.major}.{version.minor}.{version.revision}" + (f".{version.build}" if version.build else "")


class ImageGroup:
    """Uploads, slot states, test/confirm and erase, on the flash and its trailers."""

    def __init__(self, flash: Flash, options: ImageGroupOptions = ImageGroupOptions(),
                 on_confirmed: Callable[[int], None] | None = None) -> None:
        self._flash = flash
        self._layout = flash.layout
        self._options = options
        self._upload: _Upload | None = None
        self._on_confirmed = on_confirmed

    def forget_upload(self) -> None:
        """A reset loses the upload in progress (Zephyr keeps it in RAM)."""
        self._upload = None

    # -- Zephyr's next-boot model --------------------------------------------------------------------------

    def _pair(self, slot: int) -> SlotPair:
        return self._layout.image(slot // 2)

    def _next_boot(self, image: int) -> tuple[int, str]:
        """img_mgmt_get_next_boot_slot: the slot image `image` boots next, and how (normal, test, revert)."""
        pair = self._layout.image(image)
        swap = next_swap(read_trailer(self._flash, pair.primary), read_trailer(self._flash, pair.secondary))
        active = 2 * image
        return {
            SwapType.NONE: (active, "normal"),
            SwapType.PERM: (active + 1, "normal"),
            SwapType.REVERT: (active + 1, "revert"),
            SwapType.TEST: (active + 1, "test"),
        }[swap]

    def _slot_in_use(self, slot: int) -> bool:
        """img_mgmt_slot_in_use with ALLOW_ERASE_PENDING (Zephyr's default): only the revert slot is refused."""
        image = slot // 2
        next_slot, kind = self._next_boot(image)
        return (slot == next_slot and kind == "revert") or slot == 2 * image

    def _states(self) -> list[dict[str, Any]]:
        states = []
        for pair in self._layout.images:
            next_slot, kind = self._next_boot(pair.number)
            active = 2 * pair.number
            flags = {active: {"active"} | ({"confirmed"} if kind != "revert" else set()), active + 1: set()}
            if next_slot != active:
                flags[active + 1] = {"normal": {"pending", "permanent"}, "revert": {"confirmed"},
                                     "test": {"pending"}}[kind]
            for index in (0, 1):
                image = slot_image(self._flash, pair, index)
                if image is None:
                    continue
                slot_flags = flags[active + index]
                states.append({
                    "image": pair.number, "slot": index, "version": _version_text(image.version),
                    "hash": image.image_hash,
                    # Not CONFIG_MCUMGR_GRP_IMG_FRUGAL_LIST: every flag is sent, true or false.
                    "bootable": not image.parts.flags & 0x10,  # IMAGE_F_NON_BOOTABLE
                    "pending": "pending" in slot_flags, "confirmed": "confirmed" in slot_flags,
                    "active": "active" in slot_flags, "permanent": "permanent" in slot_flags,
                })
        return states

    def _state_reply(self, header: RawHeader) -> bytes:
        return encode_response(header, {"images": self._states(), "splitStatus": 0})

    def _find_by_hash(self, digest: bytes) -> int | None:
        for slot in range(self._layout.slot_count):
            image = slot_image(self._flash, self._pair(slot), slot % 2)
            if image is not None and image.image_hash == digest:
                return slot
        return None

    def _set_next_boot_slot(self, slot: int, confirm: bool) -> int:
        """img_mgmt_set_next_boot_slot: 0 or an IMG_MGMT_ERR."""
        image = slot // 2
        active = 2 * image
        next_slot, kind = self._next_boot(image)
        if (confirm and image != ACTIVE_IMAGE and not self._options.allow_confirm_non_active_any
                and slot == active):
            # ALLOW_CONFIRM_NON_ACTIVE_IMAGE_SECONDARY (default y) still lets a host confirm the secondary.
            return IMG_MGMT_ERR.IMAGE_CONFIRMATION_DENIED
        if not confirm and slot == active:
            return IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED
        if kind == "test":
            return 0 if (not confirm and slot == next_slot) else IMG_MGMT_ERR.IMAGE_ALREADY_PENDING
        if kind == "normal":
            if confirm and slot == next_slot:
                return 0
            if (slot == active and active != next_slot) or (not confirm and slot != active and slot == next_slot):
                return IMG_MGMT_ERR.IMAGE_ALREADY_PENDING
        if kind == "revert":
            if confirm and slot == next_slot:
                return 0
            if not confirm:
                return IMG_MGMT_ERR.IMAGE_ALREADY_PENDING
        pair = self._layout.image(image)
        if slot == active:
            # boot_set_next(active=true, confirm): the running image confirms itself (image_ok in its trailer).
            trailer = read_trailer(self._flash, pair.primary)
            if trailer.magic and not trailer.image_ok:
                set_image_ok(self._flash, pair.primary)
                logger.info("image %d: %s confirmed: it stays after the next reset", image, self._label(pair, 0))
                if self._on_confirmed is not None:
                    self._on_confirmed(image)
            return 0
        write_trailer(self._flash, pair.secondary, swap_type=SwapType.PERM if confirm else SwapType.TEST,
                      image_ok=confirm, copy_done=False)
        logger.info("image %d: %s swaps in at the next reset%s", image, self._label(pair, 1),
                    " for good" if confirm else " for a test boot")
        return 0

    def _label(self, pair: SlotPair, index: int) -> str:
        found = slot_image(self._flash, pair, index)
        return "an unreadable image" if found is None else found.label

    # -- commands -----------------------------------------------------------------------------------------

    def state_read(self, header: RawHeader, message: bytes) -> bytes:
        ImageStatesReadRequest.loads(message)
        return self._state_reply(header)

    def state_write(self, header: RawHeader, message: bytes) -> bytes:
        request = ImageStatesWriteRequest.loads(message)
        digest = request.hash or b""
        if not digest:
            if not request.confirm:
                return error_response(header, IMG_MGMT_ERR.INVALID_HASH)  # a test without a hash
            slot = 2 * ACTIVE_IMAGE
        elif len(digest) != SHA256_BYTES:
            return error_response(header, IMG_MGMT_ERR.INVALID_HASH)
        else:
            found = self._find_by_hash(digest)
            if found is None:
                return error_response(header, IMG_MGMT_ERR.HASH_NOT_FOUND)
            slot = found
        rc = self._set_next_boot_slot(slot, bool(request.confirm))
        if rc:
            return error_response(header, rc)
        return self._state_reply(header)

    def erase(self, header: RawHeader, message: bytes) -> bytes:
        request = ImageEraseRequest.loads(message)
        # Without a slot, Zephyr erases the secondary slot of the running application.
        slot = 2 * ACTIVE_IMAGE + 1 if request.slot is None else request.slot
        if not 0 <= slot < self._layout.slot_count:
            return error_response(header, IMG_MGMT_ERR.INVALID_SLOT)
        if self._slot_in_use(slot):
            return error_response(header, IMG_MGMT_ERR.NO_FREE_SLOT)
        partition = self._pair(slot).slot(slot % 2)
        self._flash.erase(partition.offset, partition.size_bytes)
        if self._upload is not None and self._upload.image == slot // 2:
            self._upload = None
        return encode_response(header, {})

    def upload(self, header: RawHeader, message: bytes) -> bytes:
        request = ImageUploadWriteRequest.loads(message)
        if request.off == 0:
            refused = self._start(header, request)
            if refused is not None:
                return refused
        upload = self._upload
        if upload is None or request.off != upload.off:
            # Zephyr drops data at an unexpected offset and names the offset it wants.
            return encode_response(header, {"off": 0 if upload is None else upload.off})
        if upload.off + len(request.data) > upload.size:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_DATA_OVERRUN)
        self._write(upload, request.data)
        body: dict[str, Any] = {"off": upload.off}
        if upload.off == upload.size:
            pair = self._layout.image(upload.image)
            if upload.sha:
                written = self._flash.read(pair.secondary.offset, upload.size)
                body["match"] = hashlib.sha256(written).digest() == upload.sha
            logger.info("image %d: received %s, %s bytes, in its secondary slot%s", upload.image,
                        self._label(pair, 1), f"{upload.size:,}",
                        "" if body.get("match", True) else " (its SHA-256 does not match the upload's)")
            self._upload = None
        return encode_response(header, body)

    def _start(self, header: RawHeader, request: ImageUploadWriteRequest) -> bytes | None:
        """Check a first chunk and start (or resume) an upload; an error reply if refused."""
        image = 0 if request.image is None else request.image
        if not 0 <= image < len(self._layout.images):
            return error_response(header, IMG_MGMT_ERR.INVALID_SLOT)
        if request.len is None:
            return error_response(header, IMG_MGMT_ERR.INVALID_LENGTH)
        if len(request.data) < IMAGE_HEADER_BYTES:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_HEADER)
        try:
            new_version = header_version(request.data)
        except ImageError:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC)
        sha = request.sha or b""
        if len(sha) > SHA256_BYTES:
            return error_response(header, IMG_MGMT_ERR.INVALID_HASH)
        current = self._upload
        if sha and current is not None and (current.image, current.sha, current.size) == (image, sha, request.len):
            # The same image again after a broken link: keep what arrived and say where to go on.
            return encode_response(header, {"off": current.off})
        pair = self._layout.image(image)
        if request.len > pair.secondary.size_bytes:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE)
        if self._slot_in_use(2 * image + 1):
            return error_response(header, IMG_MGMT_ERR.NO_FREE_SLOT)
        if request.upgrade:
            running = slot_image(self._flash, pair, 0)
            # Zephyr compares major.minor.revision: an equal version is no upgrade either.
            if running is not None and new_version.as_tuple()[:3] <= running.version.as_tuple()[:3]:
                return error_response(header, IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER)
        page = self._layout.page_bytes
        # A new upload drops any pending request on the slot before a byte of the new image lands.
        self._flash.erase(pair.secondary.end - page, page)
        self._upload = _Upload(image=image, size=request.len, sha=sha, off=0, erased_to=0)
        return None

    def _write(self, upload: _Upload, data: bytes) -> None:
        page = self._layout.page_bytes
        base = self._layout.image(upload.image).secondary.offset
        end = upload.off + len(data)
        # Erase as the data arrives (Zephyr's CONFIG_IMG_ERASE_PROGRESSIVELY) instead of the whole slot at once.
        while upload.erased_to < end:
            self._flash.erase(base + upload.erased_to, page)
            upload.erased_to += page
        self._flash.write(base + upload.off, data)
        upload.off = end
