"""The replies a transport has received, waiting for the request they answer: one queue for every transport.

A transport puts whole SMP messages in as they arrive (serial frames, reassembled BLE notifications) and marks the
link lost once; readers take the next response, optionally only the one to a given sequence number (stale replies
to requests that timed out are skipped), and every later reader sees a loss too.
"""

from __future__ import annotations

import asyncio

from smpclient.transport import SMPTransportDisconnected

from wedge.firmware.protocol.smp_messages import MalformedMessage, is_response, parse_header


class ReplyQueue:
    def __init__(self, closed: str = "the link is closed") -> None:
        self._closed = closed
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sequence: int | None = None
        self.lost: str | None = None

    def reset(self) -> None:
        """A new connection: nothing queued, nothing lost."""
        self._frames = asyncio.Queue()
        self.lost = None

    def put(self, message: bytes) -> None:
        self._frames.put_nowait(message)

    def lose(self, why: str) -> None:
        self.lost = why
        self._frames.put_nowait(None)

    def check(self) -> None:
        if self.lost is not None:
            raise SMPTransportDisconnected(self.lost)

    def expect(self, request: bytes) -> None:
        """Only the reply to `request` counts from now on: drop what is queued (raising if the link was lost)."""
        self.sequence = parse_header(request).sequence
        while not self._frames.empty():
            if self._frames.get_nowait() is None:
                raise SMPTransportDisconnected(self.lost or self._closed)

    async def next(self, *, only_sequence: int | None) -> bytes:
        """The next well-formed response (to request `only_sequence`, when given); skips everything else."""
        while True:
            frame = await self._frames.get()
            if frame is None:
                self._frames.put_nowait(None)  # every later reader sees the loss too
                raise SMPTransportDisconnected(self.lost or self._closed)
            try:
                header = parse_header(frame)
            except MalformedMessage:
                continue
            if is_response(header) and (only_sequence is None or header.sequence == only_sequence):
                return frame
