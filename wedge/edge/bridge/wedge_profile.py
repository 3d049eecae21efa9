"""The wedge stream profile: resume where the sinks stopped, subscribe, order records, backfill every gap.

Records are keyed by (device id, epoch, seq). On each connection: read the stream status (the device id, its
current epoch and what its buffer holds of older ones), ask the sinks which of those numbers they hold, subscribe,
start, and ask the device for exactly the missing ones, one gap at a time, naming the epoch. A new epoch (the
device rebooted, was re-flashed or reset) is reported and numbered on its own; the old epoch's tail is still
fetched while the device buffers it. Only numbers the device produced and no longer holds count as lost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from bleak import BleakClient
from bleak.exc import BleakError

from wedge.edge.bridge.coverage import Coverage, EpochCoverage
from wedge.edge.bridge.models import read_model_info
from wedge.edge.bridge.sequencer import SequenceCounters, Sequencer
from wedge.edge.bridge.session import Link, SessionOptions
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol import gatt_uuids as ids
from wedge.firmware.protocol.ble_control import (
    STATUS_VERSION,
    EpochSpan,
    StreamStatus,
    backfill_command,
    backfill_epoch_command,
    decode_status,
    start_command,
)
from wedge.firmware.protocol.ble_errors import MalformedPacket, UnsupportedVersion
from wedge.firmware.protocol.ble_records import FrameReader, Record
from wedge.firmware.protocol.heart_rate import decode_heart_rate

DEFAULT_PERIOD_S: Final[float] = 1.0

logger = logging.getLogger(__name__)


async def read_key(client: BleakClient) -> str:
    """A key for a device without the wedge stream's device id: its Device Information serial, else its address."""
    if client.services.get_characteristic(ids.SERIAL_NUMBER) is not None:
        try:
            serial = bytes(await client.read_gatt_char(ids.SERIAL_NUMBER)).decode("utf-8", errors="replace").strip()
        except BleakError:
            serial = ""
        if serial:
            return serial
    return client.address


def device_key(device_id: int) -> str:
    """How a device id names a device in every sink: 16 lowercase hex digits."""
    return f"{device_id:016x}"


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


async def subscribe_heart_rate(client: BleakClient, link: Link) -> None:
    """Heart Rate Measurement (0x2A37), when a wedge device also has it: shown beside its records, not stored."""
    characteristic = client.services.get_characteristic(ids.HEART_RATE_MEASUREMENT)
    if characteristic is None:
        return

    def on_measurement(_char: object, data: bytearray) -> None:
        try:
            measurement = decode_heart_rate(data)
        except MalformedPacket:
            return
        link.stats.heart_rate_bpm = measurement.bpm
        link.stats.skin_contact = measurement.contact

    try:
        await client.start_notify(characteristic, on_measurement)
    except BleakError as exc:
        logger.info("heart rate unavailable: %s", exc)


@dataclass
class _Backfill:
    epoch: int
    first_seq: int
    end_seq: int
    asked_s: float
    attempts: int
    answered: bool = False  # a backfilled record of this epoch arrived since the last ask


def _start_of(span: EpochSpan, coverage: EpochCoverage, device_known: bool) -> int:
    """Where an epoch's accounting starts: after what the sinks hold below the device's buffer, at 0 for a new
    epoch of a device the sinks know (its first records were evicted before anyone fetched them: lost), else at
    the oldest buffered record (what came before predates this bridge)."""
    if coverage.end_below is not None:
        return min(coverage.end_below, span.first_seq)
    if device_known and coverage.newest is None:
        return 0
    return span.first_seq


class WedgeStreamProfile:
    """One device's wedge stream; the sequencers (one per epoch) live across reconnects, so nothing is released
    twice."""

    name = "wedge"

    def __init__(self, options: SessionOptions | None = None) -> None:
        self.options = options or SessionOptions()
        self.epochs: dict[int, Sequencer[Record]] = {}
        self._retired = SequenceCounters()
        self._current: int | None = None
        self._version = STATUS_VERSION
        self._reader = FrameReader()
        self._period_s = DEFAULT_PERIOD_S
        self._key: str | None = None
        self._backfill: _Backfill | None = None
        self._order: list[int] = []  # the device's epochs as its last status listed them, oldest first
        # The live edge of this connection: notifications arrive in order, so current-epoch numbers above the
        # newest one received live (or, before any, from the next number the status named before subscribing)
        # may be on their way. They are not asked for: asking would have them sent twice.
        self._live_newest: int | None = None
        self._subscribed_at = 0
        self._unknown_models: set[int] = set()  # model ids records named that nobody has described yet
        self._asked_models: set[int] = set()    # ... of those, the ones this connection asked the device about

    def expected_period_s(self) -> float:
        return self._period_s

    async def _status(self, client: BleakClient) -> StreamStatus:
        status = decode_status(await client.read_gatt_char(ids.WEDGE_STATUS))
        self._period_s = 1.0 / status.rate_hz if status.rate_hz > 0 else DEFAULT_PERIOD_S
        return status

    async def attach(self, client: BleakClient, link: Link) -> None:
        if client.services.get_service(ids.WEDGE_STREAM_SERVICE) is None:
            raise BleakError(f"{client.address} has no wedge stream service")
        status = await self._status(client)
        key = device_key(status.device_id) if status.device_id is not None else await read_key(client)
        if self._key is not None and key != self._key:
            raise BleakError(f"{client.address} is {key!r}, not the device {self._key!r} this session follows")
        self._key = link.stats.key = key
        self._version = status.version
        self._asked_models.clear()
        await self._learn_model(client, link, status.model_id)
        await self._follow(link, status)
        self._reader.reset()
        self._backfill = None
        self._live_newest, self._subscribed_at = None, status.next_seq
        await client.start_notify(ids.WEDGE_RECORDS, lambda _c, data: self._on_frame(data, link))
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, start_command(), response=True)
        await subscribe_battery(client, link)
        await subscribe_heart_rate(client, link)
        # Records made while we were away are only in the device's buffer: the newest status names them.
        await self._account(link, await self._status(client))
        await self._ask_for_gaps(client, link, force=True)

    # -- models --------------------------------------------------------------------------------------------

    async def _learn_model(self, client: BleakClient, link: Link, model_id: int) -> None:
        """Ask the device what its model is, unless the bridge knows it; once per model id and connection."""
        models = link.outlet.models
        if model_id in models or model_id in self._asked_models:
            return
        self._asked_models.add(model_id)
        info = await read_model_info(client)
        if info is None:
            return
        models.add(info)
        if info.model_id != model_id:
            logger.info("%s: records name model %08x, the device describes %08x (%s)", self._key, model_id,
                        info.model_id, info.name)
        else:
            logger.info("%s runs %s %s (%s)", self._key, info.name, info.version or "",
                        ", ".join(info.labels) if info.labels else info.unit or "no labels")
        self._unknown_models.discard(info.model_id)

    # -- epochs --------------------------------------------------------------------------------------------

    async def _follow(self, link: Link, status: StreamStatus) -> None:
        """Sequencers for the epochs seen for the first time, started where the sinks stopped; report a restart."""
        assert self._key is not None
        new = [span for span in status.buffered() if span.epoch not in self.epochs]
        previous = self._current
        known = True
        if new:
            coverage = await link.coverage(self._key, new)
            if previous is None:
                known = coverage.known
                if known and coverage.epoch(status.epoch).newest is None:
                    # The sinks know the device but not its current epoch: it restarted while no bridge ran.
                    # The epoch before is the newest the device still lists that the sinks hold, else their last.
                    held = [span.epoch for span in status.past_epochs if coverage.epoch(span.epoch).newest is not None]
                    previous = held[-1] if held else coverage.last_epoch
            for span in new:
                self.epochs[span.epoch] = self._sequencer(span, coverage, known)
        if self._version == STATUS_VERSION and previous is not None and previous != status.epoch:
            self._restarted(link, previous, status.epoch)
        elif self._version != STATUS_VERSION and status.next_seq < (self.epochs[status.epoch].next_seq or 0):
            logger.warning("%s: its sequence numbers went back (%d < %d) and it names no epoch (status version 1):"
                           " records reusing old numbers are dropped as duplicates", self._key, status.next_seq,
                           self.epochs[status.epoch].next_seq)
        self._current = link.stats.epoch = status.epoch

    def _sequencer(self, span: EpochSpan, coverage: Coverage, known: bool) -> Sequencer[Record]:
        held = coverage.epoch(span.epoch)
        return Sequencer(_start_of(span, held, known), covered=held.covered, hold_s=self.options.reorder_hold_s)

    def _restarted(self, link: Link, old: int, new: int) -> None:
        name = link.stats.name or link.stats.selector
        message = f"device {name} ({self._key}) restarted its sequence: epoch {old} -> {new}"
        link.stats.epoch_changes += 1
        link.stats.note_event("restart")
        link.stats.last_event = message
        logger.warning("%s", message)

    async def _account(self, link: Link, status: StreamStatus) -> None:
        """What the device says it holds: announced numbers not received are gaps, numbers it no longer holds
        (and no sink has) are lost; epochs it no longer buffers at all are settled and retired."""
        if any(span.epoch not in self.epochs for span in status.buffered()):
            await self._follow(link, status)
        released: list[Record] = []
        lost: list[LostRange] = []
        now_us = time.time_ns() // 1000
        for span in status.buffered():
            sequencer = self.epochs[span.epoch]
            sequencer.note_device_next(span.end_seq)
            released += sequencer.give_up(span.first_seq)
        buffered = {span.epoch for span in status.buffered()}
        for epoch in [e for e in self.epochs if e not in buffered]:
            sequencer = self.epochs.pop(epoch)
            released += sequencer.give_up(sequencer.known_end)
            released += sequencer.release_all()
            lost += self._lost_ranges(epoch, sequencer, now_us)
            for name in ("released", "duplicates", "lost", "out_of_order"):
                setattr(self._retired, name, getattr(self._retired, name) + getattr(sequencer.counters, name))
        for epoch, sequencer in self.epochs.items():
            lost += self._lost_ranges(epoch, sequencer, now_us)
        self._order = [span.epoch for span in status.buffered()]
        if lost:
            logger.warning("%s: %d records were gone from the device's buffer before they could be fetched",
                           self._key, sum(r.count for r in lost))
            link.note_lost(lost)
        self._emit(link, released)

    def _lost_ranges(self, epoch: int, sequencer: Sequencer[Record], now_us: int) -> list[LostRange]:
        assert self._key is not None
        return [LostRange(self._key, epoch, a, b, now_us) for a, b in sequencer.take_lost()]

    def _counters(self) -> SequenceCounters:
        total = SequenceCounters(**vars(self._retired))
        for sequencer in self.epochs.values():
            for name in ("released", "duplicates", "lost", "out_of_order"):
                setattr(total, name, getattr(total, name) + getattr(sequencer.counters, name))
        return total

    def _emit(self, link: Link, released: list[Record]) -> None:
        counters = self._counters()
        stats = link.stats
        stats.records, stats.duplicates, stats.lost = counters.released, counters.duplicates, counters.lost
        stats.out_of_order = counters.out_of_order
        if released:
            assert self._key is not None
            now_us = time.time_ns() // 1000
            models = link.outlet.models
            self._unknown_models.update(r.model_id for r in released if r.model_id not in models)
            link.emit([StreamRecord.from_record(self._key, r, now_us, stats.name, models.get(r.model_id))
                       for r in released])

    # -- records -------------------------------------------------------------------------------------------

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
            sequencer = self.epochs.get(record.epoch)
            if sequencer is None:
                # Not an epoch the status named: the device is not keeping its own rules; keep what it sends.
                logger.info("%s: record of epoch %d, which its status did not list", self._key, record.epoch)
                sequencer = self.epochs[record.epoch] = Sequencer(record.seq, hold_s=self.options.reorder_hold_s)
            if record.backfill and self._backfill is not None and self._backfill.epoch == record.epoch:
                self._backfill.answered = True
            if not record.backfill and record.epoch == self._current:
                self._live_newest = max(record.seq, -1 if self._live_newest is None else self._live_newest)
            released.extend(sequencer.offer(record))
        self._emit(link, released)

    def drain(self, link: Link) -> None:
        # Records held behind a gap were received: they reach the sinks; the gap is fetched after a restart,
        # which asks the sinks what they hold.
        released: list[Record] = []
        for sequencer in self.epochs.values():
            released += sequencer.release_all()
        self._emit(link, released)

    async def maintain(self, client: BleakClient, link: Link) -> None:
        # A quiet stream brings no new record to trigger the hold's expiry: check it on each tick too.
        released: list[Record] = []
        for sequencer in self.epochs.values():
            released += sequencer.expire()
        self._emit(link, released)
        for model_id in list(self._unknown_models - self._asked_models):
            await self._learn_model(client, link, model_id)  # re-flashed while connected, or an unknown past
        await self._ask_for_gaps(client, link, force=False)

    # -- backfill ------------------------------------------------------------------------------------------

    def _gaps(self) -> list[tuple[int, int, int]]:
        """(epoch, first, end) of every gap to ask for: older epochs first, in the order the device lists them;
        in the current epoch, only below the live edge."""
        order = self._order + [e for e in self.epochs if e not in self._order]
        edge = self._subscribed_at if self._live_newest is None else self._live_newest + 1
        gaps = []
        for epoch in order:
            if epoch not in self.epochs:
                continue
            for a, b in self.epochs[epoch].missing():
                if epoch == self._current:
                    if a >= edge:
                        continue
                    b = min(b, edge)
                gaps.append((epoch, a, b))
        return gaps

    async def _ask_for_gaps(self, client: BleakClient, link: Link, *, force: bool) -> None:
        gaps = self._gaps()
        link.stats.gaps_open = len(gaps)
        if not gaps:
            self._backfill = None
            return
        now = time.monotonic()
        pending = self._backfill
        if pending is not None and not force:
            remaining = [(a, b) for e, a, b in gaps
                         if e == pending.epoch and a < pending.end_seq and b > pending.first_seq]
            if remaining:
                first_missing = max(remaining[0][0], pending.first_seq)
                if first_missing > pending.first_seq:
                    # The backfill is arriving: let it run, and time a retry from its newest progress.
                    pending.first_seq, pending.asked_s, pending.attempts = first_missing, now, 1
                    return
                if now - pending.asked_s < self.options.backfill_retry_s:
                    return
                if pending.attempts >= self.options.backfill_attempts and not pending.answered:
                    # Asked again and again without a single backfilled record: this device does not backfill.
                    sequencer = self.epochs[pending.epoch]
                    released = sequencer.give_up(remaining[0][1])
                    lost = self._lost_ranges(pending.epoch, sequencer, time.time_ns() // 1000)
                    logger.warning("%s: no backfill came for epoch %d [%d, %d): counted lost", self._key,
                                   pending.epoch, remaining[0][0], remaining[0][1])
                    link.note_lost(lost)
                    self._emit(link, released)
                    self._backfill = None
                    return
            # else: the pending range is filled: ask for the next gap at once.
        await self._account(link, await self._status(client))
        gaps = self._gaps()
        link.stats.gaps_open = len(gaps)
        if not gaps:
            self._backfill = None
            return
        epoch, first, end = gaps[0]
        same = pending is not None and (pending.epoch, pending.first_seq) == (epoch, first) and not pending.answered
        attempts = pending.attempts + 1 if same and pending is not None else 1
        self._backfill = _Backfill(epoch, first, end, now, attempts)
        link.stats.backfill_requests += 1
        # A device of status version 1 has one epoch and knows only the epoch-less backfill.
        command = backfill_epoch_command(epoch, first, end) if self._version == STATUS_VERSION \
            else backfill_command(first, end)
        await client.write_gatt_char(ids.WEDGE_CONTROL_POINT, command, response=True)
