"""The bridge daemon: one session per device, one runner per sink, a status snapshot, and a clean stop.

`Bridge.run(stop)` streams until `stop` is set (the CLI sets it on SIGINT/SIGTERM), then disconnects, writes
out everything received to every sink (within flush_timeout_s) and closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from wedge.edge.bridge.discovery import BleStack, DeviceSelector
from wedge.edge.bridge.errors import BridgeError
from wedge.edge.bridge.heart_rate_profile import HeartRateProfile
from wedge.edge.bridge.session import DeviceSession, Profile, SessionOptions
from wedge.edge.bridge.sink_runner import SinkRunner
from wedge.edge.bridge.sinks.base import Sink
from wedge.edge.bridge.stream_record import StreamRecord
from wedge.edge.bridge.wedge_profile import WedgeStreamProfile
from wedge.errors import first_line

PROFILES: Final[tuple[str, ...]] = ("wedge", "heart-rate")
DEFAULT_FLUSH_TIMEOUT_S: Final[float] = 10.0

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
                 flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        if not selectors:
            raise BridgeError("no device to follow: give --device, --address or --service-uuid")
        if not sinks:
            raise BridgeError("no sink to write to: give --sink")
        self.options = options or SessionOptions()
        self.stack = stack
        self.runners = [SinkRunner(sink) for sink in sinks]
        self.sessions = [DeviceSession(s, stack, make_profile(profile, self.options), self._emit, self._resume,
                                       self.options) for s in selectors]
        self.flush_timeout_s = flush_timeout_s
        self._started = time.monotonic()
        self._rate_mark = (self._started, 0)
        self.records = 0

    def _emit(self, records: Sequence[StreamRecord]) -> None:
        self.records += len(records)
        for runner in self.runners:
            runner.put(records)

    async def _resume(self, device: str) -> int | None:
        """The last sequence number every durable sink holds for the device (the smallest, so none misses any)."""
        answers = [await r.sink.resume_after(device) for r in self.runners if r.sink.durable]
        if not answers:
            return None
        if any(a is None for a in answers):
            return None
        return min(a for a in answers if a is not None)

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
                         "errors": r.stats.errors, "dropped": r.stats.dropped, "last_error": r.stats.last_error}
                        for r in self.runners),
        )

    async def run(self, stop: asyncio.Event, on_tick: Callable[[BridgeStatus], None] | None = None,
                  tick_s: float = 1.0) -> BridgeStatus:
        opened: list[SinkRunner] = []
        try:
            for runner in self.runners:
                try:
                    await runner.sink.open()
                except BridgeError:
                    raise
                except Exception as exc:
                    raise BridgeError(f"sink {runner.sink.name} cannot open: {first_line(exc)}") from exc
                opened.append(runner)
                runner.start()
            self._started = time.monotonic()
            self._rate_mark = (self._started, 0)
            tasks = [asyncio.create_task(s.run(stop), name=f"device {s.selector.describe()}") for s in self.sessions]
            ticker = asyncio.create_task(self._tick(stop, on_tick, tick_s)) if on_tick else None
            stopped = asyncio.ensure_future(stop.wait())
            try:
                # Sessions only end on stop; one that raises (a BridgeError, e.g. no adapter) ends the bridge.
                done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopped and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                stopped.cancel()
                stop.set()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await asyncio.wait_for(task, self.flush_timeout_s)
                if ticker is not None:
                    ticker.cancel()
            for runner in opened:
                if not await runner.flush(self.flush_timeout_s):
                    logger.error("sink %s: %d records could not be written before exit (%s)", runner.sink.name,
                                 runner.pending, runner.stats.last_error)
            return self.status()
        finally:
            for runner in opened:
                await runner.close()
            await self.stack.close()

    async def _tick(self, stop: asyncio.Event, on_tick: Callable[[BridgeStatus], None], tick_s: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
            on_tick(self.status())
