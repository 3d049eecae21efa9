"""Shared by the bridge tests: an in-process bridge on the virtual air, a sink that can be waited on, checks."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wedge.edge.bridge.coverage import Coverage
from wedge.edge.bridge.daemon import Bridge, BridgeStatus
from wedge.edge.bridge.discovery import BleStack, DeviceSelector
from wedge.edge.bridge.session import SessionOptions
from wedge.edge.bridge.sinks.base import Sink
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.firmware.protocol.ble_control import EpochSpan
from wedge.firmware.virtual.processes import AirProcess, BleBoardProcess
from wedge.samples import sample_path

MODEL = sample_path("ppg_quality")

def start_board(air: AirProcess, state: Path, name: str, rate_hz: float = 50.0) -> BleBoardProcess:
    """A virtual ring advertising `name`, its device id, epoch and record buffer kept in `state`."""
    return BleBoardProcess("ring-nrf52840", MODEL, air.spec, state.parent, name=name,
                           extra_args=["--rate-hz", str(rate_hz), "--state-dir", str(state)])


# The rings' profiles need an encrypted, bonded link: the bridge pairs (Just Works) on its first connection.
FAST = SessionOptions(scan_timeout_s=10.0, watchdog_min_s=1.0, backoff_first_s=0.1, backoff_max_s=1.0,
                      backfill_retry_s=0.5, pair=True)


class CollectingSink:
    """Keeps every record (and lost range); `wait_for` returns once a predicate over them holds."""

    name = "collect"
    durable = False

    def __init__(self) -> None:
        self.records: list[StreamRecord] = []
        self.lost: list[LostRange] = []
        self._changed = asyncio.Event()

    async def open(self) -> None:
        return None

    async def write(self, batch: Sequence[StreamRecord]) -> None:
        self.records.extend(batch)
        self._changed.set()

    async def note_lost(self, ranges: Sequence[LostRange]) -> None:
        self.lost.extend(ranges)

    async def coverage(self, device: str, windows: Sequence[EpochSpan]) -> Coverage:
        return Coverage()

    async def close(self) -> None:
        return None

    def seqs(self, device: str, epoch: int | None = None) -> list[int]:
        return [r.seq for r in self.records if r.device == device and (epoch is None or r.epoch == epoch)]

    def epochs(self, device: str) -> list[int]:
        """The device's epochs, in the order their first record arrived."""
        return list(dict.fromkeys(r.epoch for r in self.records if r.device == device))

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
                     profile: str = "wedge", options: SessionOptions = FAST,
                     keystore: Path | None = None) -> BridgeStatus:
    bridge = Bridge([DeviceSelector(name=n) for n in names], sinks, BleStack.bumble(transport, keystore=keystore),
                    profile=profile, options=options)
    stop = asyncio.Event()
    ticks = Ticks()
    task = asyncio.create_task(bridge.run(stop, ticks, tick_s=0.1))
    try:
        await scenario(bridge, ticks)
    finally:
        stop.set()
        summary = await task
    return summary


def stuck_ws_client(port: int, path: str = "/stream") -> socket.socket:
    """A client that opens the WebSocket and then never reads again (a frozen tab, a wedged script)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101")
    return sock
