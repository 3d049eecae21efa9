"""The fleet subscriber: every device's records under one MQTT prefix, de-duplicated, into the bridge's sinks.

It subscribes to `PREFIX/+/records`, `PREFIX/+/lost` and the retained `PREFIX/+/status` with a persistent session
(a stable client id, clean_session off), so while it is away the broker queues what the bridges publish. Each sink
runs behind its own queue (the bridge's SinkRunner); a record seen twice is dropped here (and the SQLite sink's
unique key would drop it again). A broker that goes away is reconnected to with a backoff, never an exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiomqtt

from wedge.edge.bridge.errors import BridgeError
from wedge.edge.bridge.sink_runner import SinkRunner, running_sinks
from wedge.edge.bridge.sinks.base import Sink
from wedge.edge.bridge.sinks.mqtt import LEAF_LOST, LEAF_RECORDS, LEAF_STATUS
from wedge.edge.bridge.sinks.mqtt_address import MqttAddress, classify
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.edge.fleet.acks import DurableAcks, enable_manual_acks
from wedge.edge.fleet.dedup import SeenKeys
from wedge.edge.fleet.errors import FleetError
from wedge.errors import first_line

RETRY_FIRST_S: Final[float] = 0.2
RETRY_MAX_S: Final[float] = 2.0
DEFAULT_FLUSH_TIMEOUT_S: Final[float] = 10.0
# A broker that has not answered the first connection within this long is reported (and still retried).
FIRST_CONNECT_TIMEOUT_S: Final[float] = 5.0
# The status fields a device's retained status message brings into the fleet's status.
STATUS_FIELDS: Final[tuple[str, ...]] = ("state", "link", "name", "battery_percent", "epoch", "model_id",
                                         "model_name", "model_version", "bridge")

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _running(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`work` as a task for the duration of the block, cancelled after it."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def default_client_id(address: MqttAddress, sinks: Sequence[Sink]) -> str:
    """A client id that is the same for the same prefix and sinks, so a restarted fleet resumes its session."""
    digest = hashlib.sha256("\n".join([address.destination, *sorted(s.name for s in sinks)]).encode()).hexdigest()
    return f"wedge-fleet-{digest[:12]}"


@dataclass
class FleetDevice:
    """One device as the fleet sees it: its records and its bridge's last status."""

    key: str
    records: int = 0
    duplicates: int = 0
    lost: int = 0
    status: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "records": self.records, "duplicates": self.duplicates, "lost": self.lost,
                **{k: self.status.get(k) for k in STATUS_FIELDS}}


@dataclass(frozen=True)
class FleetStatus:
    uptime_s: float
    connected: bool
    records: int
    duplicates: int
    malformed: int
    rate_per_s: float
    last_error: str | None
    devices: tuple[dict[str, Any], ...]
    sinks: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"uptime_s": round(self.uptime_s, 3), "connected": self.connected, "records": self.records,
                "duplicates": self.duplicates, "malformed": self.malformed, "rate_per_s": round(self.rate_per_s, 1),
                "last_error": self.last_error, "devices": list(self.devices), "sinks": list(self.sinks)}


class FleetSubscriber:
    """Subscribes to `address`'s prefix and writes every device's records into `sinks`."""

    def __init__(self, address: MqttAddress, sinks: Sequence[Sink], *, client_id: str | None = None,
                 flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        if not sinks:
            raise FleetError("no sink to write to: give --sink")
        self.address = address
        self.runners = [SinkRunner(sink) for sink in sinks]
        self.client_id = client_id or address.client_id or default_client_id(address, sinks)
        self.flush_timeout_s = flush_timeout_s
        self.devices: dict[str, FleetDevice] = {}
        self.seen = SeenKeys()
        self.records = 0
        self.duplicates = 0
        self.malformed = 0
        self.connected = False
        self.last_error: str | None = None
        self.changed = asyncio.Event()  # set on every message and connection change, for whoever waits on one
        self._started = time.monotonic()
        self._rate_mark = (self._started, 0)

    def _device(self, key: str) -> FleetDevice:
        device = self.devices.get(key)
        if device is None:
            device = self.devices[key] = FleetDevice(key)
        return device

    def status(self) -> FleetStatus:
        now = time.monotonic()
        mark_time, mark_records = self._rate_mark
        rate = (self.records - mark_records) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, self.records)
        return FleetStatus(
            now - self._started, self.connected, self.records, self.duplicates, self.malformed, rate,
            self.last_error, tuple(d.to_dict() for d in sorted(self.devices.values(), key=lambda d: d.key)),
            tuple({"sink": r.sink.name, "written": r.stats.written, "pending": r.pending, "errors": r.stats.errors,
                   "last_error": r.stats.last_error} for r in self.runners))

    # -- messages --------------------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """One message from the broker: records and lost ranges go to the sinks, a status to the device table."""
        self.changed.set()
        leaf = topic.rsplit("/", 1)[-1]
        if leaf == LEAF_STATUS and not payload:
            return  # a retained status being cleared
        try:
            message = json.loads(payload)
            if leaf == LEAF_RECORDS:
                self._records([StreamRecord.from_dict(item) for item in message["records"]])
            elif leaf == LEAF_LOST:
                self._lost([LostRange.from_dict(item) for item in message["lost"]])
            elif leaf == LEAF_STATUS:
                self._device(str(message["device"])).status = dict(message)
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed += 1
            logger.warning("%s: malformed message dropped (%s)", topic, first_line(exc))

    def _records(self, records: Sequence[StreamRecord]) -> None:
        fresh = []
        for record in records:
            device = self._device(record.device)
            if self.seen.add(record.device, record.epoch, record.seq):
                fresh.append(record)
                device.records += 1
            else:
                device.duplicates += 1
                self.duplicates += 1
        self.records += len(fresh)
        for runner in self.runners:
            runner.put(fresh)

    def _lost(self, ranges: Sequence[LostRange]) -> None:
        for lost in ranges:
            self._device(lost.device).lost += lost.count
        for runner in self.runners:
            runner.put_lost(ranges)

    # -- the connection --------------------------------------------------------------------------------------

    async def _connection(self, tls: Any, first: bool) -> None:
        client = self.address.client(self.client_id, clean_session=False, tls_context=tls,
                                     timeout_s=FIRST_CONNECT_TIMEOUT_S)
        enable_manual_acks(client)
        acks = DurableAcks(client, self.runners)
        async with client, _running(acks.run()):
            # Messages are taken from the start: a broker may send a resumed session's queue before it answers
            # the subscription, and wait for those acknowledgements (amqtt does).
            receiving = asyncio.create_task(self._receive(client, acks))
            try:
                qos = self.address.qos
                await client.subscribe([(self.address.filter(LEAF_RECORDS), qos),
                                        (self.address.filter(LEAF_LOST), qos), (self.address.filter(LEAF_STATUS), 1)])
                self.connected = True
                self.changed.set()
                if not first:
                    logger.warning("%s: connected again", self.address.url)
                await receiving
            finally:
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await receiving

    async def _receive(self, client: aiomqtt.Client, acks: DurableAcks) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self.handle(str(message.topic), payload)
            acks.handled(message)

    async def _subscribe(self, stop: asyncio.Event) -> None:
        tls = self.address.tls_context()
        delay_s = RETRY_FIRST_S
        first = True
        while not stop.is_set():
            try:
                await self._connection(tls, first)
            except aiomqtt.MqttError as exc:
                kind, reason = classify(exc)
                if first and not self.connected and kind in ("credentials", "tls"):
                    raise FleetError(f"{self.address.url}: {reason}") from None
                if self.connected or first:
                    logger.warning("%s: %s; reconnecting", self.address.url, reason)
                self.last_error = reason
            if self.connected:
                delay_s = RETRY_FIRST_S
            self.connected = False
            first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay_s * random.uniform(0.8, 1.2))
            delay_s = min(delay_s * 2, RETRY_MAX_S)

    async def run(self, stop: asyncio.Event, on_tick: Callable[[FleetStatus], None] | None = None,
                  tick_s: float = 1.0) -> FleetStatus:
        try:
            async with running_sinks(self.runners, self.flush_timeout_s):
                self._started = time.monotonic()
                self._rate_mark = (self._started, 0)
                subscriber = asyncio.create_task(self._subscribe(stop), name="fleet subscriber")
                ticker = asyncio.create_task(self._tick(stop, on_tick, tick_s)) if on_tick else None
                stopped = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait([subscriber, stopped], return_when=asyncio.FIRST_COMPLETED)
                    if subscriber.done():
                        subscriber.result()
                finally:
                    stop.set()
                    stopped.cancel()
                    for task in (subscriber, ticker):
                        if task is not None and not task.done():
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
        except BridgeError as exc:  # a sink that cannot open
            raise FleetError(str(exc)) from exc
        return self.status()

    async def _tick(self, stop: asyncio.Event, on_tick: Callable[[FleetStatus], None], tick_s: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
            on_tick(self.status())
