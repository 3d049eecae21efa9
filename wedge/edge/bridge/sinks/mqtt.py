"""The MQTT sink: store and forward. Records go into the SQLite sink first (the outbox); one publisher per device
then forwards what is stored and not yet acknowledged to `PREFIX/<device>/records` at QoS 1 (or 2), and a record
counts as published only once the broker acknowledged it (the outbox remembers it, so after a broker outage or a
bridge restart publishing resumes from the first unacknowledged record).

Each device has its own broker connection, so its retained `PREFIX/<device>/status` (online with battery, epoch
and model; offline) has a last will saying offline when the bridge vanishes. A message carries a batch of one
device's records, `{"records": [...]}` with the fields of the other sinks; lost ranges go to `PREFIX/<device>/lost`
as `{"lost": [...]}`. A consumer de-duplicates by (device, epoch, seq): a batch whose acknowledgement was cut off
is published again. An unreachable broker is no error: the bridge keeps storing and says it is buffering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiomqtt

from wedge.edge.bridge.coverage import Coverage, Range, merge
from wedge.edge.bridge.sinks.mqtt_address import BrokerError, Failure, MqttAddress, classify
from wedge.edge.bridge.sinks.mqtt_outbox import EpochKey, Outbox, subtract
from wedge.edge.bridge.sinks.sqlite import SqliteSink
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol.ble_control import EpochSpan

LEAF_RECORDS: Final[str] = "records"
LEAF_LOST: Final[str] = "lost"
LEAF_STATUS: Final[str] = "status"
# A message holds at most this many records of one device; this many messages of a device await their
# acknowledgement at once (the broker's default in-flight window is 20).
BATCH_RECORDS: Final[int] = 500
INFLIGHT_BATCHES: Final[int] = 8
RETRY_FIRST_S: Final[float] = 0.2
RETRY_MAX_S: Final[float] = 2.0
PUBLISH_TIMEOUT_S: Final[float] = 30.0
PROBE_TIMEOUT_S: Final[float] = 5.0
# On a clean stop, what is still unacknowledged gets this long; the rest stays in the outbox for the next start.
CLOSE_DRAIN_S: Final[float] = 5.0
# A status is published again when one of these changes (not for every RSSI wobble).
STATUS_FIELDS: Final[tuple[str, ...]] = ("state", "link", "name", "battery_percent", "epoch", "model_id",
                                         "model_name", "model_version")

logger = logging.getLogger(__name__)
T = TypeVar("T")


def records_payload(records: Sequence[StreamRecord], name: str | None) -> bytes:
    """One message of records; the device's advertised name fills in where the store did not keep it."""
    items = [r.to_dict() for r in records]
    for item in items:
        if item["name"] is None:
            item["name"] = name
    return json.dumps({"records": items}, separators=(",", ":")).encode()


def lost_payload(ranges: Sequence[LostRange]) -> bytes:
    return json.dumps({"lost": [r.to_dict() for r in ranges]}, separators=(",", ":")).encode()


def _leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (a task group reports its failed publish that way)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@dataclass
class MqttTotals:
    """What this run published and what it cost on the wire (MQTT payload bytes, before TCP/TLS framing)."""

    records: int = 0
    messages: int = 0
    payload_bytes: int = 0
    lost_ranges: int = 0
    reconnects: int = 0


@dataclass
class _Chunk:
    epoch: int
    span: Range


class _Publisher:
    """One device's connection to the broker: its records, lost ranges and status, acknowledged one batch at a time."""

    def __init__(self, sink: MqttSink, device: str) -> None:
        self.sink = sink
        self.device = device
        self.name: str | None = None
        self.model_id: int | None = None
        self.pending: dict[int, list[Range]] = {}
        self.acked: dict[int, list[Range]] = {}
        self.in_flight: dict[int, _Chunk] = {}
        self.lost_pending: list[LostRange] = []
        self.lost_in_flight: dict[int, list[LostRange]] = {}
        self.status: dict[str, Any] | None = None
        self._status_due = False
        self._fingerprint: tuple[Any, ...] | None = None
        self._announced_online = False
        self._next_id = 0
        self.connected = False
        self.closing = False
        self.wake = asyncio.Event()
        self.client_id = f"wedge-{device[:40]}-{secrets.token_hex(3)}"
        self.task: asyncio.Task[None] | None = None

    def _waiting(self) -> int:
        return sum(b - a for ranges in self.pending.values() for a, b in ranges)

    @property
    def buffered(self) -> int:
        """Records stored and not yet acknowledged."""
        return self._waiting() + sum(c.span[1] - c.span[0] for c in self.in_flight.values())

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"mqtt {self.device}")

    # -- what there is to publish --------------------------------------------------------------------------

    def add_records(self, records: Sequence[StreamRecord]) -> None:
        by_epoch: dict[int, list[int]] = {}
        for record in records:
            by_epoch.setdefault(record.epoch, []).append(record.seq)
            self.name = record.name or self.name
            self.model_id = record.model_id if record.model_id is not None else self.model_id
        for epoch, seqs in by_epoch.items():
            flying = [c.span for c in self.in_flight.values() if c.epoch == epoch]
            new = merge((seq, seq + 1) for seq in seqs)
            left = subtract(self.pending.get(epoch, []) + new, self.acked.get(epoch, []) + flying)
            if left:
                self.pending[epoch] = left
        self.wake.set()

    def add_lost(self, ranges: Sequence[LostRange]) -> None:
        self.lost_pending += ranges
        self.wake.set()

    def update_status(self, snapshot: dict[str, Any]) -> None:
        """The bridge's view of the device; published (retained) when something a reader cares about changed."""
        self.name = snapshot.get("name") or self.name
        status = {
            "device": self.device, "state": "online" if snapshot.get("state") == "streaming" else "offline",
            "link": snapshot.get("state"), "name": self.name, "battery_percent": snapshot.get("battery_percent"),
            "epoch": snapshot.get("epoch"), "model_id": None if self.model_id is None else f"{self.model_id:08x}",
            "model_name": snapshot.get("model_name"), "model_version": snapshot.get("model_version"),
            "rssi": snapshot.get("rssi"), "bridge": self.sink.bridge_id,
        }
        fingerprint = tuple(status[k] for k in STATUS_FIELDS)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.status = status
            self._status_due = True
            self.wake.set()

    def _take(self) -> _Chunk | list[LostRange] | None:
        if self.lost_pending:
            lost, self.lost_pending = self.lost_pending, []
            return lost
        # A part batch waits while another is in flight: under load the batches fill up, and at a trickle a record
        # still leaves at once.
        if self.in_flight and self._waiting() < self.sink.batch_records:
            return None
        for epoch, ranges in self.pending.items():
            first, end = ranges[0]
            cut = min(end, first + self.sink.batch_records)
            if cut == end:
                ranges.pop(0)
            else:
                ranges[0] = (cut, end)
            if not ranges:
                del self.pending[epoch]
            return _Chunk(epoch, (first, cut))
        return None

    def _requeue(self) -> None:
        """A connection ended: what was in flight is unacknowledged again."""
        for chunk in self.in_flight.values():
            self.pending[chunk.epoch] = merge(self.pending.get(chunk.epoch, []) + [chunk.span])
        self.in_flight.clear()
        for lost in self.lost_in_flight.values():
            self.lost_pending += lost
        self.lost_in_flight.clear()

    # -- the connection ------------------------------------------------------------------------------------

    def _will(self) -> aiomqtt.Will:
        payload = {"device": self.device, "state": "offline", "link": "bridge lost", "name": self.name,
                   "bridge": self.sink.bridge_id}
        return aiomqtt.Will(self.sink.address.topic(self.device, LEAF_STATUS), json.dumps(payload), qos=1, retain=True)

    async def run(self) -> None:
        delay_s = RETRY_FIRST_S
        while True:
            try:
                async with self.sink.client(self.client_id, self._will()) as client:
                    client.pending_calls_threshold = INFLIGHT_BATCHES + 4
                    self.connected = True
                    delay_s = RETRY_FIRST_S
                    self.sink.connected(self)
                    await self._session(client)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of one connection leads to a retry, never an exit
                self.connected = False
                self._requeue()
                self.sink.failed(self, *classify(_leaf_error(exc)))
            finally:
                self.connected = False
                self._requeue()
            if self.closing:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed(), delay_s * random.uniform(0.8, 1.2))
            delay_s = min(delay_s * 2, RETRY_MAX_S)

    async def _closed(self) -> None:
        while not self.closing:
            self.wake.clear()
            await self.wake.wait()

    async def _session(self, client: aiomqtt.Client) -> None:
        watcher = asyncio.create_task(self._watch(client))
        sender = asyncio.create_task(self._send(client))
        try:
            await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, sender):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if sender.done() and not sender.cancelled() and sender.exception() is None:
            if self._announced_online and self.status is not None:
                offline = {**self.status, "state": "offline", "link": "bridge stopped"}
                await self._publish(client, LEAF_STATUS, json.dumps(offline).encode(), retain=True)
            return
        for task in (sender, watcher):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        raise aiomqtt.MqttError("the broker connection ended")

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Ends (with MqttError) when the connection drops: this client subscribes to nothing."""
        async for _message in client.messages:
            pass

    async def _send(self, client: aiomqtt.Client) -> None:
        window = asyncio.Semaphore(INFLIGHT_BATCHES)
        async with asyncio.TaskGroup() as group:
            while True:
                if self._status_due and self.status is not None:
                    self._status_due = False
                    status = {**self.status, "t_us": time.time_ns() // 1000}
                    await self._publish(client, LEAF_STATUS, json.dumps(status).encode(), retain=True)
                    self._announced_online = self._announced_online or status["state"] == "online"
                await window.acquire()
                work = self._take()
                if work is None:
                    window.release()
                    if self.closing and not (self.pending or self.in_flight or self.lost_in_flight):
                        return  # everything acknowledged (a part batch waiting behind one in flight goes first)
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                self._next_id += 1
                if isinstance(work, list):
                    self.lost_in_flight[self._next_id] = work
                    group.create_task(self._send_lost(client, self._next_id, work, window))
                else:
                    self.in_flight[self._next_id] = work
                    group.create_task(self._send_records(client, self._next_id, work, window))

    async def _publish(self, client: aiomqtt.Client, leaf: str, payload: bytes, *, retain: bool = False) -> None:
        await client.publish(self.sink.address.topic(self.device, leaf), payload, qos=self.sink.address.qos,
                             retain=retain, timeout=PUBLISH_TIMEOUT_S)
        self.sink.totals.messages += 1
        self.sink.totals.payload_bytes += len(payload)

    async def _send_records(self, client: aiomqtt.Client, ident: int, chunk: _Chunk, window: asyncio.Semaphore) -> None:
        try:
            records = await self.sink.run_blocking(self.sink.outbox.read, self.device, chunk.epoch, *chunk.span)
            await self._publish(client, LEAF_RECORDS, records_payload(records, self.name))
        finally:
            window.release()
        # Acknowledged: from here on these numbers are published, in memory and (next on the worker) in the outbox.
        del self.in_flight[ident]
        self.wake.set()  # a part batch may go now
        acked = self.acked[chunk.epoch] = merge(self.acked.get(chunk.epoch, []) + [chunk.span])
        self.sink.submit(self.sink.outbox.set_acked, self.device, chunk.epoch, list(acked))
        self.sink.totals.records += len(records)

    async def _send_lost(self, client: aiomqtt.Client, ident: int, ranges: list[LostRange],
                         window: asyncio.Semaphore) -> None:
        try:
            await self._publish(client, LEAF_LOST, lost_payload(ranges))
        finally:
            window.release()
        del self.lost_in_flight[ident]
        self.sink.submit(self.sink.outbox.add_acked_lost, ranges)
        self.sink.totals.lost_ranges += len(ranges)


class MqttSink:
    """Records into `store` (the outbox), forwarded to the broker at `address` and counted published when acked."""

    durable = True

    def __init__(self, address: MqttAddress, store: SqliteSink, *, batch_records: int = BATCH_RECORDS) -> None:
        self.address = address
        self.store = store
        self.batch_records = batch_records
        self.name = address.url
        self.outbox = Outbox(store.path, address.destination)
        self.bridge_id = f"{socket.gethostname()}:{os.getpid()}"
        self.totals = MqttTotals()
        self.last_error: str | None = None
        self.outages_s: list[float] = []
        self._outage_since: float | None = None
        self._tls: ssl.SSLContext | None = None
        self._acked: dict[EpochKey, list[Range]] = {}
        self._publishers: dict[str, _Publisher] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-outbox")
        self._opened = False

    # -- the worker thread (the outbox's reads and writes, in order) --------------------------------------

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        def done(future: Future[object]) -> None:
            if future.exception() is not None:
                logger.error("%s: %s", self.name, future.exception())

        self._worker.submit(fn, *args).add_done_callback(done)

    def client(self, identifier: str, will: aiomqtt.Will | None = None,
               timeout_s: float = PUBLISH_TIMEOUT_S) -> aiomqtt.Client:
        return self.address.client(identifier, will=will, tls_context=self._tls, timeout_s=timeout_s,
                                   max_inflight=INFLIGHT_BATCHES + 4)

    # -- the Sink interface --------------------------------------------------------------------------------

    async def open(self) -> None:
        self._tls = self.address.tls_context()
        await self._probe()
        await self.store.open()
        await self.run_blocking(self.outbox.open)
        self._acked = await self.run_blocking(self.outbox.acked)
        pending, lost = await self.run_blocking(self.outbox.backlog, self._acked)
        self._opened = True
        for (device, epoch), ranges in pending.items():
            self._publisher(device).pending[epoch] = ranges
        for lost_range in lost:
            self._publisher(lost_range.device).lost_pending.append(lost_range)
        backlog = sum(b - a for ranges in pending.values() for a, b in ranges)
        if backlog:
            logger.warning("%s: %d records stored in %s and not yet acknowledged: publishing them", self.name,
                           backlog, self.store.path)
        for publisher in self._publishers.values():
            publisher.wake.set()

    async def _probe(self) -> None:
        """Refused credentials or a failed TLS handshake are the user's to fix: an error now. An unreachable
        broker is not: the bridge stores and buffers until it is back."""
        try:
            async with self.client(f"wedge-probe-{secrets.token_hex(4)}", timeout_s=PROBE_TIMEOUT_S):
                pass
        except aiomqtt.MqttError as exc:
            kind, reason = classify(exc)
            if kind in ("credentials", "tls"):
                raise BrokerError(f"{self.name}: {reason}") from None
            self.failed(None, kind, reason)

    def _publisher(self, device: str) -> _Publisher:
        publisher = self._publishers.get(device)
        if publisher is None:
            publisher = self._publishers[device] = _Publisher(self, device)
            for (acked_device, epoch), ranges in self._acked.items():
                if acked_device == device:
                    publisher.acked[epoch] = ranges
            publisher.start()
        return publisher

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        await self.store.write(batch)
        by_device: dict[str, list[StreamRecord]] = {}
        for record in batch:
            by_device.setdefault(record.device, []).append(record)
        for device, records in by_device.items():
            self._publisher(device).add_records(records)

    async def note_lost(self, ranges: Sequence[LostRange]) -> None:
        await self.store.note_lost(ranges)
        for lost_range in ranges:
            self._publisher(lost_range.device).add_lost([lost_range])

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return await self.store.coverage(device, windows)

    def note_devices(self, devices: Sequence[dict[str, Any]]) -> None:
        if not self._opened:
            return
        for snapshot in devices:
            if snapshot.get("key"):
                self._publisher(snapshot["key"]).update_status(snapshot)

    @property
    def buffered(self) -> int:
        return sum(p.buffered for p in self._publishers.values())

    def state(self) -> dict[str, Any]:
        """For the bridge's status: connected or buffering, and how much waits for an acknowledgement."""
        connected = sum(p.connected for p in self._publishers.values())
        return {"broker": "buffering" if self._outage_since is not None else "connected",
                "buffering": self.buffered, "published": self.totals.records, "messages": self.totals.messages,
                "payload_bytes": self.totals.payload_bytes, "devices_connected": connected,
                "devices": len(self._publishers), "last_error": self.last_error}

    # -- outages -------------------------------------------------------------------------------------------

    def connected(self, publisher: _Publisher) -> None:
        if self._outage_since is None:
            return
        if all(p.connected for p in self._publishers.values()):
            outage_s = time.monotonic() - self._outage_since
            self._outage_since = None
            self.outages_s.append(outage_s)
            self.totals.reconnects += 1
            logger.warning("%s: the broker is back after %.1f s: publishing %d buffered records", self.name,
                           outage_s, self.buffered)

    def failed(self, publisher: _Publisher | None, kind: Failure, reason: str) -> None:
        self.last_error = reason
        if self._outage_since is not None:
            return
        self._outage_since = time.monotonic()
        log = logger.error if kind in ("credentials", "tls") else logger.warning
        log("%s: %s: storing locally in %s and buffering (%d records); publishing resumes when the broker is back",
            self.name, reason, self.store.path, self.buffered)

    async def close(self) -> None:
        publishers = list(self._publishers.values())
        for publisher in publishers:
            publisher.closing = True
            publisher.wake.set()
        tasks = [p.task for p in publishers if p.task is not None]
        if tasks:
            _done, stuck = await asyncio.wait(tasks, timeout=CLOSE_DRAIN_S)
            for task in stuck:
                task.cancel()
            for task in stuck:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.buffered:
            logger.warning("%s: %d records not yet acknowledged stay in %s: they are published on the next start",
                           self.name, self.buffered, self.store.path)
        await self.run_blocking(self.outbox.close)
        self._worker.shutdown(wait=True)
        await self.store.close()


__all__ = ["MqttSink", "MqttTotals", "lost_payload", "records_payload"]
