"""The bridge daemon: one session per device, one runner per sink, a status snapshot, and a clean stop.

`Bridge.run(stop)` streams until `stop` is set (the CLI sets it on SIGINT/SIGTERM), then disconnects, writes
out everything received to every sink (within flush_timeout_s) and closes them. A name (or service UUID) may
match several devices: once one is followed, the bridge keeps scanning for others and follows each on its own.
A device whose link cannot be secured (no bond, a lost bond) is dropped with one line saying how to recover; the
others go on, and when none is left the bridge ends with that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.discovery import AddressClaims, BleStack, DeviceSelector, find_device
from wedge.edge.bridge.errors import BridgeError, LinkSecurityError
from wedge.edge.bridge.heart_rate_profile import HeartRateProfile
from wedge.edge.bridge.models import ModelCatalog
from wedge.edge.bridge.session import DeviceSession, Outlet, Profile, SessionOptions
from wedge.edge.bridge.sink_runner import SinkRunner, running_sinks
from wedge.edge.bridge.sinks.base import DeviceListener, RemoteSink, Sink
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.edge.bridge.wedge_profile import WedgeStreamProfile
from wedge.errors import first_line
from wedge.firmware.protocol.ble_control import EpochSpan

PROFILES: Final[tuple[str, ...]] = ("wedge", "heart-rate")
DEFAULT_FLUSH_TIMEOUT_S: Final[float] = 10.0
# Once every session of a name is bound to its device, the bridge scans this long, this often, for more of them.
DISCOVERY_SCAN_S: Final[float] = 3.0
DISCOVERY_PERIOD_S: Final[float] = 5.0
MAX_DEVICES_PER_SELECTOR: Final[int] = 16
# Sinks that show the devices' state (MQTT, the live page) hear of it this often.
DEVICE_REPORT_S: Final[float] = 1.0

logger = logging.getLogger(__name__)


def make_profile(name: str, options: SessionOptions) -> Profile:
    if name == "wedge":
        return WedgeStreamProfile(options)
    if name == "heart-rate":
        return HeartRateProfile()
    raise BridgeError(f"unknown profile {name!r}: expected {' or '.join(PROFILES)}")


@dataclass(frozen=True)
class BridgeStatus:
    """A snapshot for the status line and the exit summary."""

    uptime_s: float
    records: int
    rate_per_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    devices: tuple[dict[str, Any], ...]
    sinks: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "uptime_s": round(self.uptime_s, 3), "records": self.records, "rate_per_s": round(self.rate_per_s, 1),
            "latency_p50_s": self.latency_p50_s, "latency_p99_s": self.latency_p99_s,
            "devices": list(self.devices), "sinks": list(self.sinks),
        }


class Bridge:
    """Streams the selected devices into the sinks."""

    def __init__(self, selectors: Sequence[DeviceSelector], sinks: Sequence[Sink], stack: BleStack, *,
                 profile: str = "wedge", options: SessionOptions | None = None,
                 flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S, models: ModelCatalog | None = None) -> None:
        if not selectors:
            raise BridgeError("no device to follow: give --device, --address or --service-uuid")
        if not sinks:
            raise BridgeError("no sink to write to: give --sink")
        self.options = options or SessionOptions()
        self.stack = stack
        self.profile = profile
        self.selectors = tuple(selectors)
        self.runners = [SinkRunner(sink) for sink in sinks]
        self.claims = AddressClaims()
        # Models named by files the user gave; devices describe theirs as they connect.
        self.models = models or ModelCatalog()
        self._outlet = Outlet(self._emit, self._coverage, self._note_lost, self.models)
        self.sessions = [self._session(s) for s in selectors]
        self.flush_timeout_s = flush_timeout_s
        self._started = time.monotonic()
        self._rate_mark = (self._started, 0)
        self.records = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._failed: asyncio.Future[BaseException] | None = None

    def _session(self, selector: DeviceSelector, address: str | None = None) -> DeviceSession:
        return DeviceSession(selector, self.stack, make_profile(self.profile, self.options), self._outlet,
                             self.options, claims=self.claims, address=address)

    def _emit(self, records: Sequence[StreamRecord]) -> None:
        self.records += len(records)
        for runner in self.runners:
            runner.put(records)

    def _note_lost(self, ranges: Sequence[LostRange]) -> None:
        for runner in self.runners:
            runner.put_lost(ranges)

    async def _coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        """What every durable sink holds (a record one of them misses is fetched again for all)."""
        answers = [await r.sink.coverage(device, windows) for r in self.runners if r.sink.durable]
        if not answers:
            return Coverage()
        combined = answers[0]
        for answer in answers[1:]:
            combined = combined.intersect(answer)
        return combined

    def status(self) -> BridgeStatus:
        now = time.monotonic()
        mark_time, mark_records = self._rate_mark
        rate = (self.records - mark_records) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, self.records)
        first = self.runners[0].stats
        return BridgeStatus(
            uptime_s=now - self._started, records=self.records, rate_per_s=rate,
            latency_p50_s=first.latency_s(0.5), latency_p99_s=first.latency_s(0.99),
            devices=tuple(s.stats.to_dict() for s in self.sessions),
            sinks=tuple({"sink": r.sink.name, "written": r.stats.written, "pending": r.pending,
                         "errors": r.stats.errors, "dropped": r.stats.dropped, "last_error": r.stats.last_error,
                         **({"state": r.sink.state()} if isinstance(r.sink, RemoteSink) else {})}
                        for r in self.runners),
        )

    async def run(self, stop: asyncio.Event, on_tick: Callable[[BridgeStatus], None] | None = None,
                  tick_s: float = 1.0) -> BridgeStatus:
        try:
            async with running_sinks(self.runners, self.flush_timeout_s):
                self._started = time.monotonic()
                self._rate_mark = (self._started, 0)
                self._failed = asyncio.get_running_loop().create_future()
                for session in self.sessions:
                    self._start(session, stop)
                watchers = [asyncio.create_task(self._discover(selector, stop),
                                                name=f"discover {selector.describe()}")
                            for selector in self.selectors if selector.address is None]
                ticker = asyncio.create_task(self._tick(stop, on_tick, tick_s)) if on_tick else None
                listening = [r.sink for r in self.runners if isinstance(r.sink, DeviceListener)]
                if listening:
                    watchers.append(asyncio.create_task(self._report_devices(listening, stop),
                                                        name="report devices"))
                stopped = asyncio.ensure_future(stop.wait())
                try:
                    # Sessions only end on stop; one that raises (a BridgeError, e.g. no adapter) ends the bridge.
                    await asyncio.wait([self._failed, stopped], return_when=asyncio.FIRST_COMPLETED)
                    if self._failed.done():
                        raise self._failed.result()
                finally:
                    stopped.cancel()
                    stop.set()
                    for watcher in watchers:
                        watcher.cancel()
                    for task in list(self._tasks):
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await asyncio.wait_for(task, self.flush_timeout_s)
                    if ticker is not None:
                        ticker.cancel()
            return self.status()
        finally:
            await self.stack.close()

    def _start(self, session: DeviceSession, stop: asyncio.Event) -> None:
        task = asyncio.create_task(session.run(stop), name=f"device {session.selector.describe()}")
        self._tasks.append(task)

        def ended(done: asyncio.Task[None]) -> None:
            failed = self._failed
            if failed is None or failed.done() or done.cancelled() or done.exception() is None:
                return
            error = done.exception()
            if isinstance(error, LinkSecurityError) and any(not task.done() for task in self._tasks):
                logger.error("%s", first_line(error))  # the other devices stream on
                return
            failed.set_result(error)  # type: ignore[arg-type]

        task.add_done_callback(ended)

    async def _discover(self, selector: DeviceSelector, stop: asyncio.Event) -> None:
        """Follow every other device the selector matches: a session each, bound to the device it found."""
        while not stop.is_set():
            mine = [s for s in self.sessions if s.selector == selector]
            # An unbound session takes the next matching device itself; scan only once each has its own.
            if all(s.bound for s in mine) and len(mine) < MAX_DEVICES_PER_SELECTOR:
                try:
                    found = await find_device(selector, self.stack, DISCOVERY_SCAN_S, exclude=self.claims.claimed())
                except BridgeError as exc:
                    logger.info("looking for more devices matching %s: %s", selector.describe(), first_line(exc))
                    found = None
                if found is not None and not stop.is_set() and found.device.address.upper() not in self.claims.claimed():
                    logger.warning("another device matches %s: %s, followed too", selector.describe(),
                                   found.device.address)
                    session = self._session(selector, found.device.address)
                    session.stats.name = found.device.name
                    self.sessions.append(session)
                    self._start(session, stop)
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DISCOVERY_PERIOD_S)

    async def _report_devices(self, sinks: Sequence[DeviceListener], stop: asyncio.Event) -> None:
        while not stop.is_set():
            devices = [s.stats.to_dict() for s in self.sessions]
            for sink in sinks:
                sink.note_devices(devices)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DEVICE_REPORT_S)

    async def _tick(self, stop: asyncio.Event, on_tick: Callable[[BridgeStatus], None], tick_s: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
            on_tick(self.status())
