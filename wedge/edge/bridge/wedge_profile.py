"""The wedge stream profile: resume where the sinks stopped, subscribe, order records, backfill every gap.

On each connection: read the serial number (the device's key) and the stream status, resume after the last
stored sequence number, subscribe, start, and ask the device for whatever is missing; while connected, gaps
that stay open are asked for again and given up only when the device no longer holds them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from bleak import BleakClient
from bleak.exc import BleakError

from wedge.edge.bridge.sequencer import Sequencer
from wedge.edge.bridge.session import Link, SessionOptions
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import StreamStatus, backfill_command, decode_status, start_command
from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion
from wedge.firmware.protocol.ble_records import FrameReader, Record

DEFAULT_PERIOD_S: Final[float] = 1.0

logger = logging.getLogger(__name__)


async def read_key(client: BleakClient) -> str:
    """The device's stable key: its Device Information serial number, else its address."""
    if client.services.get_characteristic(ids.SERIAL_NUMBER) is not None:
        try:
            serial = bytes(await client.read_gatt_char(ids.SERIAL_NUMBER)).decode("utf-8", errors="replace").strip()
        except BleakError:
            serial = ""
        if serial:
            return serial
    return client.address


async def subscribe_battery(client: BleakClient, link: Link) -> None:
    """Battery level (0x2A19): read once, then follow its notifications when the device offers them."""
    characteristic = client.services.get_characteristic(ids.BATTERY_LEVEL)
    if characteristic is None:
        return

    def on_battery(_char: object, data: bytearray) -> None:
        if len(data) == 1 and data[0] <= 100:
            link.stats.battery_percent = data[0]

    try:
        on_battery(None, await client.read_gatt_char(characteristic))
        if "notify" in characteristic.properties:
            await client.start_notify(characteristic, on_battery)
    except BleakError as exc:
        logger.info("battery level unavailable: %s", exc)


@dataclass
class _Backfill:
    first_seq: int
    end_seq: int
    asked_s: float
    attempts: int
    answered: bool = False  # a backfilled record arrived since the last ask


class WedgeStreamProfile:
    """One device's wedge stream; the sequencer lives across reconnects, so nothing is released twice."""

    name = "wedge"

    def __init__(self, options: SessionOptions | None = None) -> None:
        self.options = options or SessionOptions()
        self.sequencer: Sequencer[Record] = Sequencer(hold_s=self.options.reorder_hold_s)
        self._reader = FrameReader()
        self._period_s = DEFAULT_PERIOD_S
        self._key: str | None = None
        self._backfill: _Backfill | None = None

    def expected_period_s(self) -> float:
        return self._period_s

    async def _status(self, client: BleakClient) -> StreamStatus:
        status = decode_status(await client.read_gatt_char(ids.WEDGE_STATUS))
        self._period_s = 1.0 / status.rate_hz if status.rate_hz > 0 else DEFAULT_PERIOD_S
        return status

    async def attach(self, client: BleakClient, link: Link) -> None:
        if client.services.get_service(ids.WEDGE_STREAM_SERVICE) is None:
            raise BleakError(f"{client.address} has no wedge stream service")
        key = await read_key(client)
        if self._key is not None and key != self._key:
            raise BleakError(f"{client.address} is {key!r}, not the device {self._key!r} this session follows")
        self._key = link.stats.key = key
        status = await self._status(client)
        if not self.sequencer.started:
            last = await link.resume(key)
            self.sequencer.start_at(max(status.oldest_seq, 0) if last is None else last + 1)
        elif status.next_seq < (self.sequencer.next_seq or 0):
            logger.warning("%s: its sequence numbers went back (%d < %d): its state was reset; records reusing "
                           "old numbers are dropped as duplicates", key, status.next_seq, self.sequencer.next_seq)
        self._reader.reset()
        self._backfill = None
        self._account(link, status)
        await client.start_notify(ids.WEDGE_RECORDS, lambda _c, data: self._on_frame(data, link))
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, start_command(), response=True)
        await subscribe_battery(client, link)
        # Records made while we were away are only in the device's buffer: the newest status names them.
        self._account(link, await self._status(client))
        await self._ask_for_gaps(client, link, force=True)

    def _account(self, link: Link, status: StreamStatus) -> None:
        self.sequencer.note_device_next(status.next_seq)
        lost_before = self.sequencer.counters.lost
        released = self.sequencer.give_up(status.oldest_seq)
        if self.sequencer.counters.lost > lost_before:
            logger.warning("%s: %d records were gone from the device's buffer before they could be fetched",
                           self._key, self.sequencer.counters.lost - lost_before)
        self._emit(link, released)

    def _emit(self, link: Link, released: list[Record]) -> None:
        counters = self.sequencer.counters
        stats = link.stats
        stats.records, stats.duplicates, stats.lost = counters.released, counters.duplicates, counters.lost
        stats.out_of_order = counters.out_of_order
        if released:
            assert self._key is not None
            now_us = time.time_ns() // 1000
            link.emit([StreamRecord.from_record(self._key, r, now_us) for r in released])

    def _on_frame(self, data: bytearray, link: Link) -> None:
        link.frame_seen()
        try:
            decoded = self._reader.feed(data)
        except MalformedPacket as exc:
            link.stats.malformed += 1
            logger.info("%s: malformed notification dropped: %s", self._key, exc)
            return
        for error in decoded.errors:
            if isinstance(error, UnsupportedVersion):
                link.stats.unsupported += 1
            else:
                link.stats.malformed += 1
            logger.info("%s: %s", self._key, error)
        released: list[Record] = []
        for record in decoded.records:
            if record.backfill and self._backfill is not None:
                self._backfill.answered = True
            released.extend(self.sequencer.offer(record))
        self._emit(link, released)

    def drain(self, link: Link) -> None:
        # Records held behind a gap were received: they reach the sinks; the gap is fetched after a restart,
        # which resumes at the first number the sinks miss.
        self._emit(link, self.sequencer.release_all())

    async def maintain(self, client: BleakClient, link: Link) -> None:
        # A quiet stream brings no new record to trigger the hold's expiry: check it on each tick too.
        self._emit(link, self.sequencer.expire())
        await self._ask_for_gaps(client, link, force=False)

    async def _ask_for_gaps(self, client: BleakClient, link: Link, *, force: bool) -> None:
        gaps = self.sequencer.missing()
        link.stats.gaps_open = len(gaps)
        if not gaps:
            self._backfill = None
            return
        now = time.monotonic()
        pending = self._backfill
        first, end = gaps[0][0], gaps[-1][1]
        if pending is not None and not force:
            if first > pending.first_seq and first < pending.end_seq:
                # The backfill is arriving: let it run, and time a retry from its newest progress.
                pending.first_seq, pending.asked_s, pending.attempts = first, now, 1
                return
            if now - pending.asked_s < self.options.backfill_retry_s:
                return
            if pending.attempts >= self.options.backfill_attempts and not pending.answered:
                # Asked again and again without a single backfilled record: this device does not backfill.
                self._emit(link, self.sequencer.give_up(gaps[0][1]))
                self._backfill = None
                return
        self._account(link, await self._status(client))
        gaps = self.sequencer.missing()
        if not gaps:
            return
        first, end = gaps[0][0], gaps[-1][1]
        attempts = 1 if pending is None or pending.first_seq != first or pending.answered else pending.attempts + 1
        self._backfill = _Backfill(first, end, now, attempts)
        link.stats.backfill_requests += 1
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, backfill_command(first, end), response=True)
