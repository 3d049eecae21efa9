"""Runs one sink behind its own queue: batches records, retries a failed batch with backoff, measures latency.
Lost ranges (records a device no longer had) go through the same queue, after the records.

A failing sink keeps what it was given (up to a bound) and keeps retrying; the other sinks and the devices
are not held up. `flush` waits until everything queued has been written, for a clean exit; `running_sinks` opens
a set of runners' sinks, and flushes and closes them (the bridge's and the fleet's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Final

from wedge.edge.bridge.errors import BridgeError
from wedge.edge.bridge.sinks.base import Sink
from wedge.edge.bridge.stream_record import LostRange, StreamRecord
from wedge.errors import first_line

MAX_BATCH: Final[int] = 2000
# Group commit: a sink is written at most this often (unless a full batch waits), so a 1,000 records/s stream
# costs 20 commits a second, not one per notification, for at most this much added latency.
GROUP_COMMIT_S: Final[float] = 0.05
RETRY_FIRST_S: Final[float] = 0.2
RETRY_MAX_S: Final[float] = 5.0
# A sink down for long drops its oldest records past this bound rather than exhaust memory (and says so).
MAX_PENDING: Final[int] = 1_000_000
LATENCY_SAMPLES: Final[int] = 50_000
# Latency figures describe the last few seconds: a backlog drained an hour ago says nothing about now.
LATENCY_WINDOW_S: Final[float] = 10.0

logger = logging.getLogger(__name__)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


@dataclass
class SinkStats:
    written: int = 0
    errors: int = 0
    dropped: int = 0
    last_error: str | None = None
    latencies_s: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def latency_s(self, fraction: float, window_s: float = LATENCY_WINDOW_S) -> float | None:
        """A percentile of device-to-commit latency over records committed in the last window_s."""
        since = time.monotonic() - window_s
        return percentile([latency for at, latency in self.latencies_s if at >= since], fraction)


class SinkRunner:
    """One sink's writer task."""

    def __init__(self, sink: Sink, group_commit_s: float = GROUP_COMMIT_S) -> None:
        self.sink = sink
        self.group_commit_s = group_commit_s
        self.stats = SinkStats()
        self._pending: deque[StreamRecord] = deque()
        self._lost: list[LostRange] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._flushing = False
        # Cumulative counts, so a caller can ask whether what it put so far is written: records and lost ranges
        # put, lost ranges written (records written or dropped are in stats); the events `listen` was given are set
        # when one moves.
        self._records_put = 0
        self._lost_put = 0
        self._lost_written = 0
        self._listeners: set[asyncio.Event] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"sink {self.sink.name}")

    def mark(self) -> tuple[int, int]:
        """Where the queue ends now: `reached(mark)` says when everything put before it is written."""
        return self._records_put, self._lost_put

    def listen(self, event: asyncio.Event) -> None:
        """Set `event` whenever records or lost ranges are written (or dropped); `unlisten` stops it."""
        self._listeners.add(event)

    def unlisten(self, event: asyncio.Event) -> None:
        self._listeners.discard(event)

    def _progressed(self) -> None:
        for event in self._listeners:
            event.set()

    def reached(self, mark: tuple[int, int]) -> bool:
        """Whether every record and lost range put before `mark` is written (or dropped past MAX_PENDING, which
        the log and `dropped` say)."""
        records, lost = mark
        return self.stats.written + self.stats.dropped >= records and self._lost_written >= lost

    def put(self, records: Sequence[StreamRecord]) -> None:
        if not records:
            return
        self._records_put += len(records)
        self._pending.extend(records)
        overflow = len(self._pending) - MAX_PENDING
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            self.stats.dropped += overflow
            self._progressed()
        self._idle.clear()
        self._wake.set()

    def put_lost(self, ranges: Sequence[LostRange]) -> None:
        if not ranges:
            return
        self._lost_put += len(ranges)
        self._lost.extend(ranges)
        self._idle.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _write(self, write: Awaitable[None], delay_s: float) -> float | None:
        """One attempt: None when it was written, else the next retry delay (after waiting this one)."""
        try:
            await write
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.errors += 1
            self.stats.last_error = first_line(exc)
            logger.warning("sink %s: write failed (%s); retrying in %.1f s", self.sink.name,
                           self.stats.last_error, delay_s)
            await asyncio.sleep(delay_s)  # a retry backoff, not a synchronization
            return min(delay_s * 2, RETRY_MAX_S)
        return None

    async def _loop(self) -> None:
        delay_s = RETRY_FIRST_S
        loop = asyncio.get_running_loop()
        last_write = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait_s = last_write + self.group_commit_s - loop.time()
            if wait_s > 0 and len(self._pending) < MAX_BATCH and not self._flushing:
                await asyncio.sleep(wait_s)  # collecting a group commit, not synchronizing
            last_write = loop.time()
            while self._pending or self._lost:
                if not self._pending:
                    lost = list(self._lost)
                    retry = await self._write(self.sink.note_lost(lost), delay_s)
                    if retry is None:
                        del self._lost[:len(lost)]
                        self._lost_written += len(lost)
                        self._progressed()
                    delay_s = retry or RETRY_FIRST_S
                    continue
                batch = [self._pending[i] for i in range(min(MAX_BATCH, len(self._pending)))]
                retry = await self._write(self.sink.write(batch), delay_s)
                if retry is not None:
                    delay_s = retry
                    continue
                delay_s = RETRY_FIRST_S
                for _ in batch:
                    self._pending.popleft()
                self.stats.written += len(batch)
                self._progressed()
                committed_us = time.time_ns() // 1000
                at = time.monotonic()
                # Live records only: a backfilled record's age says how long the link was down, not how fast it is.
                self.stats.latencies_s.extend(
                    (at, (committed_us - r.t_device_us) / 1e6) for r in batch if not r.backfill)
            self._idle.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued record is written; False when the sink could not catch up in time."""
        self._flushing = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.sink.close()


@contextlib.asynccontextmanager
async def running_sinks(runners: Sequence[SinkRunner], flush_timeout_s: float) -> AsyncIterator[None]:
    """Open every runner's sink and start it (BridgeError naming a sink that cannot open); after a clean exit of
    the block, write out what is queued (within flush_timeout_s each); always close the sinks that were opened."""
    opened: list[SinkRunner] = []
    try:
        for runner in runners:
            try:
                await runner.sink.open()
            except BridgeError:
                raise
            except Exception as exc:
                raise BridgeError(f"sink {runner.sink.name} cannot open: {first_line(exc)}") from exc
            opened.append(runner)
            runner.start()
        yield
        for runner in opened:
            if not await runner.flush(flush_timeout_s):
                logger.error("sink %s: %d records could not be written before exit (%s)", runner.sink.name,
                             runner.pending, runner.stats.last_error)
    finally:
        for runner in opened:
            await runner.close()
