"""The SMP image group of the virtual board, answering as Zephyr's img_mgmt does.

Upload writes slot 1 with `off`/`len`/`sha`/`image` (a first chunk whose `sha` matches the upload in progress
resumes it: the reply names the offset to continue from), state read lists the slots, state write marks an
image for test or confirms the running one, erase clears slot 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from wedge.firmware.errors import ImageError
from wedge.firmware.image.format import IMAGE_HEADER_BYTES, header_version
from wedge.firmware.image.model_image import ModelImage
from wedge.firmware.protocol.smp_messages import (
    IMG_MGMT_ERR,
    Header,
    ImageEraseRequest,
    ImageStatesReadRequest,
    ImageStatesWriteRequest,
    ImageUploadWriteRequest,
    encode_response,
    error_response,
)
from wedge.firmware.virtual.bootloader import slot_image
from wedge.firmware.virtual.flash import Flash
from wedge.firmware.virtual.trailer import SwapType, next_swap, read_trailer, set_image_ok, write_trailer

SHA256_BYTES: Final[int] = 32


@dataclass
class _Upload:
    size: int
    sha: bytes
    off: int
    erased_to: int


def _version_text(image: ModelImage) -> str:
    v = image.version
    # Zephyr prints major.minor.revision and appends the build number only when it is set.
    return f"{v.major}.{v.minor}.{v.revision}" + (f".{v.build}" if v.build else "")


class ImageGroup:
    """Slot 1 uploads and the slot states, on top of the flash and the trailers."""

    def __init__(self, flash: Flash, max_image_bytes: int, running_hash: Callable[[], bytes | None]) -> None:
        self._flash = flash
        self._layout = flash.layout
        self._max_image_bytes = max_image_bytes
        self._running_hash = running_hash
        self._upload: _Upload | None = None

    def forget_upload(self) -> None:
        """A reset loses the upload in progress (Zephyr keeps it in RAM)."""
        self._upload = None

    # -- helpers ----------------------------------------------------------------------------------------

    def _swap(self) -> SwapType:
        return next_swap(read_trailer(self._flash, self._layout.primary), read_trailer(self._flash, self._layout.secondary))

    def _slot1_in_use(self) -> bool:
        """Slot 1 holds the image to revert to while an unconfirmed test image runs: it must not be touched."""
        return self._swap() == SwapType.REVERT

    def _states(self) -> list[dict[str, Any]]:
        swap = self._swap()
        states = []
        primary = slot_image(self._flash, self._layout.primary)
        if primary is not None:
            entry: dict[str, Any] = {"image": 0, "slot": 0, "version": _version_text(primary),
                                     "hash": primary.image_hash, "bootable": True}
            if swap != SwapType.REVERT:
                entry["confirmed"] = True
            if primary.image_hash == self._running_hash():
                entry["active"] = True
            states.append(entry)
        secondary = slot_image(self._flash, self._layout.secondary)
        if secondary is not None:
            entry = {"image": 0, "slot": 1, "version": _version_text(secondary),
                     "hash": secondary.image_hash, "bootable": True}
            if swap in (SwapType.TEST, SwapType.PERM):
                entry["pending"] = True
            if swap == SwapType.PERM:
                entry["permanent"] = True
            if swap == SwapType.REVERT:
                entry["confirmed"] = True
            states.append(entry)
        return states

    def _state_reply(self, header: Header) -> bytes:
        return encode_response(header, {"images": self._states(), "splitStatus": 0})

    # -- commands -----------------------------------------------------------------------------------------

    def state_read(self, header: Header, message: bytes) -> bytes:
        ImageStatesReadRequest.loads(message)
        return self._state_reply(header)

    def state_write(self, header: Header, message: bytes) -> bytes:
        request = ImageStatesWriteRequest.loads(message)
        primary = slot_image(self._flash, self._layout.primary)
        secondary = slot_image(self._flash, self._layout.secondary)
        if request.confirm and (request.hash is None or (primary is not None and request.hash == primary.image_hash)):
            if primary is None:
                return error_response(header, IMG_MGMT_ERR.NO_IMAGE)
            trailer = read_trailer(self._flash, self._layout.primary)
            if trailer.magic and not trailer.image_ok:
                set_image_ok(self._flash, self._layout.primary)
            return self._state_reply(header)
        if secondary is None or request.hash != secondary.image_hash:
            if primary is not None and request.hash == primary.image_hash:
                return error_response(header, IMG_MGMT_ERR.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED)
            return error_response(header, IMG_MGMT_ERR.HASH_NOT_FOUND)
        write_trailer(self._flash, self._layout.secondary, swap_type=SwapType.PERM if request.confirm else SwapType.TEST,
                      image_ok=request.confirm, copy_done=False)
        return self._state_reply(header)

    def erase(self, header: Header, message: bytes) -> bytes:
        request = ImageEraseRequest.loads(message)
        if (request.slot if request.slot is not None else 1) != 1:
            return error_response(header, IMG_MGMT_ERR.INVALID_SLOT)
        if self._slot1_in_use():
            return error_response(header, IMG_MGMT_ERR.NO_FREE_SLOT)
        self._flash.erase(self._layout.secondary.offset, self._layout.secondary.size_bytes)
        self._upload = None
        return encode_response(header, {})

    def upload(self, header: Header, message: bytes) -> bytes:
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
            if upload.sha:
                written = self._flash.read(self._layout.secondary.offset, upload.size)
                body["match"] = hashlib.sha256(written).digest() == upload.sha
            self._upload = None
        return encode_response(header, body)

    def _start(self, header: Header, request: ImageUploadWriteRequest) -> bytes | None:
        """Check a first chunk and start (or resume) an upload; an error reply if refused."""
        if request.image not in (None, 0):
            return error_response(header, IMG_MGMT_ERR.INVALID_SLOT)
        if request.len is None:
            return error_response(header, IMG_MGMT_ERR.INVALID_LENGTH)
        if len(request.data) < IMAGE_HEADER_BYTES:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_HEADER)
        try:
            header_version(request.data)
        except ImageError:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_HEADER_MAGIC)
        sha = request.sha or b""
        if len(sha) > SHA256_BYTES:
            return error_response(header, IMG_MGMT_ERR.INVALID_HASH)
        if sha and self._upload is not None and self._upload.sha == sha and self._upload.size == request.len:
            # The same image again after a broken link: keep what arrived and say where to go on.
            return encode_response(header, {"off": self._upload.off})
        if request.len > self._max_image_bytes:
            return error_response(header, IMG_MGMT_ERR.INVALID_IMAGE_TOO_LARGE)
        if self._slot1_in_use():
            return error_response(header, IMG_MGMT_ERR.NO_FREE_SLOT)
        if request.upgrade:
            running = slot_image(self._flash, self._layout.primary)
            new = header_version(request.data).as_tuple()[:3]
            # Zephyr compares major.minor.revision: an equal version is no upgrade either.
            if running is not None and new <= running.version.as_tuple()[:3]:
                return error_response(header, IMG_MGMT_ERR.CURRENT_VERSION_IS_NEWER)
        page = self._layout.page_bytes
        # A new upload drops any pending request on slot 1 before a byte of the new image lands.
        self._flash.erase(self._layout.secondary.end - page, page)
        self._upload = _Upload(size=request.len, sha=sha, off=0, erased_to=0)
        return None

    def _write(self, upload: _Upload, data: bytes) -> None:
        page = self._layout.page_bytes
        base = self._layout.secondary.offset
        end = upload.off + len(data)
        # Erase as the data arrives (Zephyr's CONFIG_IMG_ERASE_PROGRESSIVELY) instead of the whole slot at once.
        while upload.erased_to < end:
            self._flash.erase(base + upload.erased_to, page)
            upload.erased_to += page
        self._flash.write(base + upload.off, data)
        upload.off = end

