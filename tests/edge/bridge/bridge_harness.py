"""Shared by the bridge tests: an in-process bridge on the virtual air, a sink that can be waited on, checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from wedge.edge.bridge.daemon import Bridge, BridgeStatus
from wedge.edge.bridge.discovery import BleStack, DeviceSelector
from wedge.edge.bridge.session import SessionOptions
from wedge.edge.bridge.sinks.base import Sink
from wedge.edge.bridge.stream_record import StreamRecord

FAST = SessionOptions(scan_timeout_s=10.0, watchdog_min_s=1.0, backoff_first_s=0.1, backoff_max_s=1.0,
                      backfill_retry_s=0.5)


class CollectingSink:
    """Keeps every record; `wait_for` returns once a predicate over them holds."""

    name = "collect"
    durable = False

    def __init__(self) -> None:
        self.records: list[StreamRecord] = []
        self._changed = asyncio.Event()

    async def open(self) -> None:
        return None

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        self.records.extend(batch)
        self._changed.set()

    async def resume_after(self, device: str) -> int | None:
        return None

    async def close(self) -> None:
        return None

    def seqs(self, device: str) -> list[int]:
        return [r.seq for r in self.records if r.device == device]

    async def wait_for(self, predicate: Callable[[list[StreamRecord]], bool], timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.records):
                self._changed.clear()
                await self._changed.wait()

    async def more(self, device: str, count: int, timeout_s: float = 20.0) -> None:
        """Wait until `count` more records of `device` arrived than now."""
        target = len(self.seqs(device)) + count
        await self.wait_for(lambda _r: len(self.seqs(device)) >= target, timeout_s)


@dataclass
class Ticks:
    """The bridge's status ticks, waitable."""

    latest: BridgeStatus | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, status: BridgeStatus) -> None:
        self.latest = status
        self._changed.set()

    async def wait_for(self, predicate: Callable[[BridgeStatus], bool], timeout_s: float = 20.0) -> BridgeStatus:
        async with asyncio.timeout(timeout_s):
            while self.latest is None or not predicate(self.latest):
                self._changed.clear()
                await self._changed.wait()
        return self.latest


def device_stats(status: BridgeStatus, key: str) -> dict:
    return next(d for d in status.devices if d["key"] == key)


def assert_whole(seqs: list[int], first: int = 0) -> None:
    """Every number from `first` to the newest, each exactly once (order is the sequencer's own test: under
    load a backfill may outlast the reorder hold, and then the gap's records come late by design)."""
    assert seqs, "no records"
    assert len(set(seqs)) == len(seqs), f"duplicates among {len(seqs)} records"
    assert sorted(seqs) == list(range(first, first + len(seqs))), f"gaps: {sorted(set(range(first, max(seqs))) - set(seqs))[:10]}"


Scenario = Callable[[Bridge, Ticks], Awaitable[None]]


async def run_bridge(transport: str, names: Sequence[str], sinks: Sequence[Sink], scenario: Scenario, *,
                     profile: str = "wedge", options: SessionOptions = FAST) -> BridgeStatus:
    bridge = Bridge([DeviceSelector(name=n) for n in names], sinks, BleStack.bumble(transport), profile=profile,
                    options=options)
    stop = asyncio.Event()
    ticks = Ticks()
    task = asyncio.create_task(bridge.run(stop, ticks, tick_s=0.1))
    try:
        await scenario(bridge, ticks)
    finally:
        stop.set()
        summary = await task
    return summary
