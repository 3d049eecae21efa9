"""Image upload over SMP: pipelined chunks that fill the device's buffer, and resume from the device's offset.

Up to `window` chunk requests are in flight (the SMP server queues them in its netbufs), so the line never
idles while a reply travels back; a reply naming an unexpected offset voids what is in flight and the upload
goes on from there (go-back-N). Each (re)start sends a first chunk of just the 32-byte image header with
`len`, `sha` and `image`: a device with the same upload in progress answers with its offset (Zephyr's
resume), a new upload starts at 0.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from smpclient.generics import error
from smpclient.requests.image_management import ImageUploadWrite
from smpclient.transport import SMPTransportDisconnected

from wedge.firmware.errors import DeviceError, FlashError
from wedge.firmware.flash.session import DeviceSession, LinkLost, describe_error, parse_reply
from wedge.firmware.image.format import IMAGE_HEADER_BYTES
from wedge.firmware.image.model_image import SignedImage
from wedge.firmware.protocol.smp_messages import parse_header

# Zephyr may erase the whole slot on the first chunk: give it longer than the other requests.
FIRST_CHUNK_TIMEOUT_S: Final[float] = 20.0
# Two chunks in flight keep the line busy; Zephyr's UART transport has two receive buffers by default.
DEFAULT_WINDOW: Final[int] = 2

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class UploadStats:
    """What an upload cost: payload bytes sent (re-sends included), resumes, and time."""

    image_bytes: int
    sent_payload_bytes: int
    chunk_payload_bytes: int
    chunks: int
    resumes: int
    window: int
    duration_s: float
    already_on_device_bytes: int = 0  # what an earlier, interrupted upload had left (resumed, not re-sent)

    @property
    def resent_bytes(self) -> int:
        """Payload sent more than once: everything sent beyond what the device still needed."""
        return max(0, self.sent_payload_bytes - (self.image_bytes - self.already_on_device_bytes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_bytes": self.image_bytes,
            "sent_payload_bytes": self.sent_payload_bytes,
            "resent_bytes": self.resent_bytes,
            "already_on_device_bytes": self.already_on_device_bytes,
            "chunk_payload_bytes": self.chunk_payload_bytes,
            "chunks": self.chunks,
            "resumes": self.resumes,
            "window": self.window,
            "duration_s": self.duration_s,
            "rate_bytes_per_s": self.image_bytes / self.duration_s if self.duration_s else None,
        }


def _uint_width(value: int) -> int:
    """Bytes CBOR takes for an unsigned integer: the payload room changes only when this does."""
    return 1 if value < 24 else 2 if value < 0x100 else 3 if value < 0x10000 else 5


class ChunkSizer:
    """Builds the largest upload request at an offset that fits an SMP message of `limit_bytes`."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._rooms: dict[int, int] = {}

    def room(self, offset: int) -> int:
        """Payload bytes a request at `offset` can carry (it changes only with the CBOR width of `offset`)."""
        width = _uint_width(offset)
        if width not in self._rooms:
            size = max(1, self._limit - len(ImageUploadWrite(off=offset, data=b"").BYTES))
            while size > 1 and len(ImageUploadWrite(off=offset, data=bytes(size)).BYTES) > self._limit:
                size -= 1  # the byte-string length itself takes one or two more bytes of CBOR
            self._rooms[width] = size
        return self._rooms[width]

    def request(self, data: bytes, offset: int) -> ImageUploadWrite:
        return ImageUploadWrite(off=offset, data=data[offset : offset + min(self.room(offset), len(data) - offset)])


def plan_chunks(total_bytes: int, start: int, limit_bytes: int) -> list[tuple[int, int, int]]:
    """(offset, payload bytes, message bytes) of each request uploading `total_bytes` from `start`."""
    sizer = ChunkSizer(limit_bytes)
    plan, offset = [], start
    while offset < total_bytes:
        size = min(sizer.room(offset), total_bytes - offset)
        plan.append((offset, size, len(ImageUploadWrite(off=offset, data=bytes(size)).BYTES)))
        offset += size
    return plan


@dataclass
class _Tally:
    sent: int = 0
    chunks: int = 0
    largest: int = 0


async def _pump(session: DeviceSession, data: bytes, offset: int, window: int, progress: Progress | None,
                tally: _Tally) -> bool | None:
    """Send chunks from `offset` to the end; returns the device's SHA-256 verdict (None if it gave none)."""
    transport, total = session.transport, len(data)
    sizer = ChunkSizer(transport.max_unencoded_size)
    acked = next_off = offset
    in_flight: collections.OrderedDict[int, tuple[int, int]] = collections.OrderedDict()
    silent = 0
    match: bool | None = None
    while acked < total:
        while len(in_flight) < window and next_off < total:
            request = sizer.request(data, next_off)
            try:
                await transport.send_pipelined(request.BYTES)
            except SMPTransportDisconnected as exc:
                raise LinkLost(str(exc)) from None
            in_flight[request.header.sequence] = (next_off, len(request.data))
            tally.sent += len(request.data)
            tally.chunks += 1
            tally.largest = max(tally.largest, len(request.data))
            next_off += len(request.data)
        try:
            frame = await asyncio.wait_for(transport.receive_any(), session.timeout_s)
        except TimeoutError:
            silent += 1
            if silent >= session.attempts:
                raise LinkLost(f"the device on {session.port} stopped answering") from None
            in_flight.clear()  # lost on the way: go back to what the device acknowledged
            next_off = acked
            continue
        except SMPTransportDisconnected as exc:
            raise LinkLost(str(exc)) from None
        sequence = parse_header(frame).sequence
        if sequence not in in_flight:
            continue  # a late reply to a request given up on
        while True:  # replies to earlier requests in the window were lost; this one supersedes them
            seq, (off, size) = in_flight.popitem(last=False)
            if seq == sequence:
                break
        reply = parse_reply(ImageUploadWrite(off=0, data=b""), frame)
        if error(reply):
            raise FlashError(f"the device refused the upload: {describe_error(reply)}")
        silent = 0
        acked = _offset(reply, total)
        match = reply.match
        if progress is not None:
            progress(acked, total)
        if acked != off + size:
            # The device wants another offset (it dropped a chunk): everything in flight is void.
            in_flight.clear()
            next_off = acked
    return match


async def upload_image(
    session: DeviceSession,
    image: SignedImage,
    *,
    image_number: int | None = None,
    upgrade_only: bool = False,
    progress: Progress | None = None,
    window: int = DEFAULT_WINDOW,
    max_resumes: int = 5,
    reconnect_timeout_s: float = 15.0,
) -> UploadStats:
    """Upload `image` to the secondary slot of MCUboot image `image_number` (default: the one it is packed for);
    resumes after link losses, checks the device's SHA-256 match. Zephyr takes a missing `image` as 0, the
    application, so it is always sent."""
    if window < 1:
        raise ValueError(f"the window must be at least 1, got {window}")
    data = image.data
    total = len(data)
    tally = _Tally()
    resumes = 0
    started = time.monotonic()
    number = image.image_number if image_number is None else image_number
    already: int | None = None
    while True:
        try:
            first = ImageUploadWrite(off=0, data=data[:IMAGE_HEADER_BYTES], image=number, len=total,
                                     sha=image.upload_sha256, upgrade=True if upgrade_only else None)
            response = await session.request(first, timeout_s=FIRST_CHUNK_TIMEOUT_S)
            tally.sent += IMAGE_HEADER_BYTES
            offset = _offset(response, total)
            if already is None:
                # The device resumes an upload it kept from an earlier session: those bytes were sent then.
                already = offset if offset > IMAGE_HEADER_BYTES else 0
            if progress is not None:
                progress(offset, total)
            match = response.match if offset == total else await _pump(session, data, offset, window, progress, tally)
            if match is False:
                raise FlashError("the device's SHA-256 of the uploaded image does not match: the transfer was corrupted")
            return UploadStats(total, tally.sent, tally.largest, tally.chunks, resumes, window,
                               time.monotonic() - started, already or 0)
        except LinkLost as exc:
            resumes += 1
            if resumes > max_resumes:
                raise DeviceError(f"the upload to {session.port} failed {resumes} times: {exc}") from None
            await session.reconnect(reconnect_timeout_s)


def _offset(response: Any, total: int) -> int:
    if response.off is None or not 0 <= response.off <= total:
        raise FlashError(f"the device answered the upload with a bad offset {response.off!r}")
    return int(response.off)
