"""Streams records to each subscribed connection through the link model: live records first, then backfill.

One task per connection waits for data, then for the next connection event, and notifies at most the
event's packet budget. Records that cannot be sent stay in the ring buffer for the host to backfill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bumble.device import Connection, Device

from wedge.firmware.protocol.ble_control import BACKFILL_TO_NEWEST
from wedge.firmware.protocol.ble_records import FrameWriter, payload_bytes_for_mtu, with_backfill_flag
from wedge.firmware.virtual.ble.link_model import ConnectionEvents, LinkModel
from wedge.firmware.virtual.ble.ring_buffer import RecordRing

# A host that drains slower than the board produces loses its live queue past this many records; they stay
# in the ring buffer and reach it by backfill, so the device never holds two copies without bound.
MAX_LIVE_BACKLOG: Final[int] = 4096
# One packet in this many of each connection event is the backfill's when one is pending.
BACKFILL_SHARE_DIVISOR: Final[int] = 3

logger = logging.getLogger(__name__)


@dataclass
class StreamFaults:
    """Faults the device can inject into what it notifies (set by tests and the board's control channel)."""

    silent: bool = False       # keep the link up but notify nothing (a stalled stack)
    drop_frames: int = 0       # lose this many upcoming live frames (records reach the host only by backfill)
    malformed: int = 0         # send this many garbage notifications before the next real frame


@dataclass
class _Session:
    connection: Connection
    events: ConnectionEvents
    live: FrameWriter = field(default_factory=FrameWriter)
    backfill: FrameWriter = field(default_factory=FrameWriter)
    streaming: bool = True
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    sent_frames: int = 0


class RecordStreamer:
    """The wedge stream's notify side for every connection that subscribed to the records characteristic."""

    def __init__(self, device: Device, records: Any, ring: RecordRing, link: LinkModel,
                 faults: StreamFaults | None = None) -> None:
        self._device = device
        self._records = records
        self._ring = ring
        self.link = link
        self.faults = faults or StreamFaults()
        self._sessions: dict[Connection, _Session] = {}
        self.frames_sent = 0

    @property
    def subscribers(self) -> int:
        return len(self._sessions)

    def streaming(self, connection: Connection) -> bool:
        session = self._sessions.get(connection)
        return session is not None and session.streaming

    def on_subscription(self, connection: Connection, notify: bool) -> None:
        if notify and connection not in self._sessions:
            session = _Session(connection, ConnectionEvents(self.link))
            session.task = asyncio.create_task(self._send_loop(session), name=f"notify-{connection.handle}")
            self._sessions[connection] = session
        elif not notify:
            self.drop(connection)

    def drop(self, connection: Connection) -> None:
        session = self._sessions.pop(connection, None)
        if session is not None and session.task is not None:
            session.task.cancel()

    def publish(self, encoded: bytes) -> None:
        """A new record (already in the ring): queue it for every streaming subscriber."""
        for session in self._sessions.values():
            if not session.streaming:
                continue
            if session.live.pending_records >= MAX_LIVE_BACKLOG:
                # The host is behind: let it find the gap and backfill from the ring instead.
                session.live.clear()
            session.live.push(encoded)
            session.wake.set()

    def set_streaming(self, connection: Connection, on: bool) -> None:
        session = self._sessions.get(connection)
        if session is None:
            return
        session.streaming = on
        if not on:
            session.live.clear()

    def request_backfill(self, connection: Connection, epoch: int, first_seq: int, end_seq: int) -> int:
        """Queue the buffered records of `epoch` in [first_seq, end_seq) for this connection; returns how many."""
        session = self._sessions.get(connection)
        if session is None:
            return 0
        newest = self._ring.end_of(epoch)
        if newest is None:
            return 0
        end = newest if end_seq == BACKFILL_TO_NEWEST else end_seq
        # A new request replaces the one still being sent: the host asks again for what it still misses.
        session.backfill.clear()
        count = 0
        for _, encoded in self._ring.iter_from(epoch, first_seq, end):
            session.backfill.push(with_backfill_flag(encoded))
            count += 1
        if count:
            session.wake.set()
        return count

    def close(self) -> None:
        for connection in list(self._sessions):
            self.drop(connection)

    async def _send_loop(self, session: _Session) -> None:
        try:
            while True:
                await session.wake.wait()
                budget = await session.events.next_event()
                await self._send_event(session, budget)
                if not (session.live or session.backfill):
                    session.wake.clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a send on a link that just went down: the disconnection handler cleans up
            logger.debug("notify loop for connection %s ended: %s", session.connection.handle, exc)

    async def _send_event(self, session: _Session, budget: int) -> None:
        faults = self.faults
        if faults.silent:
            return
        payload = payload_bytes_for_mtu(max(min(session.connection.att_mtu, self.link.att_mtu), 23))
        # Live records go first, but a backfill always gets a share of the event: on a link near capacity
        # it would otherwise never finish, and the host would wait for the gap forever.
        backfill_share = max(1, budget // BACKFILL_SHARE_DIVISOR) if session.backfill else 0
        for index in range(budget):
            if faults.malformed > 0:
                faults.malformed -= 1
                frame: bytes | None = bytes([0xEE, 0x01, 0x02])
            else:
                first, second = ((session.backfill, session.live) if index < backfill_share
                                 else (session.live, session.backfill))
                if second.mid_record:
                    # A fragmented record's frames go back to back: the reader reassembles in arrival order.
                    first, second = second, first
                frame = first.next_frame(payload) or second.next_frame(payload)
                if frame is None:
                    return
                if faults.drop_frames > 0:
                    faults.drop_frames -= 1
                    continue
            with contextlib.suppress(Exception):
                await self._device.notify_subscriber(session.connection, self._records, frame)
            session.sent_frames += 1
            self.frames_sent += 1

    def subscribe_events(self) -> Callable[[Connection, Any, bool, bool], None]:
        """The handler for the device's characteristic subscription events."""
        def on_subscription(connection: Connection, characteristic: Any, notify: bool, _indicate: bool) -> None:
            if characteristic is self._records:
                self.on_subscription(connection, notify)
        return on_subscription
