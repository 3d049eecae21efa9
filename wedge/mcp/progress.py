"""Long tool calls report progress as MCP progress notifications and stop when the client cancels them.

The library's progress protocols (a quantize `Progress`, a flash observer, HIL board starts) post into a
`ProgressRelay`; a task forwards what is posted to the client. `run_in_worker` runs a blocking library call on a
thread and, when the request is cancelled, makes the call's next progress tick raise `Cancelled`, then waits for
the thread to unwind (the library's own cleanup runs: a cancelled quantize leaves no file behind).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.mcpserver import Context

from wedge.mcp.errors import McpError

T = TypeVar("T")

# Progress is forwarded at most this often per call, except the first update of a stage or phase.
MIN_INTERVAL_S: Final[float] = 0.1


class Cancelled(McpError):
    """The client cancelled the call; raised inside the worker at its next progress tick."""


@dataclass(frozen=True)
class _Update:
    progress: float
    total: float | None
    message: str


class ProgressRelay:
    """Progress posted from the event loop (`post`) or a worker thread (`post_from_thread`), sent in order.

    `check_cancelled` raises `Cancelled` once the call was cancelled: library progress callbacks call it, so
    a cancelled job stops at its next tick.
    """

    def __init__(self, send: MemoryObjectSendStream[_Update]) -> None:
        self._send = send
        self._cancelled = threading.Event()
        self._last_at = 0.0
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("cancelled by the client")

    def _due(self, update: _Update, first: bool) -> bool:
        now = time.monotonic()
        with self._lock:
            due = first or now - self._last_at >= MIN_INTERVAL_S
            if due:
                self._last_at = now
        return due

    def post(self, progress: float, total: float | None, message: str, *, first: bool = False) -> None:
        """From the event loop's thread; `first` marks the start of a stage (never dropped by the throttle)."""
        update = _Update(progress, total, message)
        if self._due(update, first):
            try:
                self._send.send_nowait(update)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    def post_from_thread(self, progress: float, total: float | None, message: str, *, first: bool = False) -> None:
        """From a worker thread started by `run_in_worker`; raises `Cancelled` when the call was cancelled."""
        self.check_cancelled()
        update = _Update(progress, total, message)
        if self._due(update, first):
            try:
                anyio.from_thread.run_sync(self._send.send_nowait, update)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
                pass  # the call is over (or its loop is closing): nobody to tell


@asynccontextmanager
async def progress_relay(ctx: Context) -> AsyncIterator[ProgressRelay]:
    """A relay whose updates go to the client as progress notifications of the current request."""
    send, receive = anyio.create_memory_object_stream[_Update](max_buffer_size=math.inf)
    relay = ProgressRelay(send)

    async def forward() -> None:
        async with receive:
            async for update in receive:
                try:
                    await ctx.report_progress(update.progress, update.total, update.message)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async with anyio.create_task_group() as group:
        group.start_soon(forward)
        try:
            yield relay
        finally:
            send.close()


async def run_in_worker(fn: Callable[[], T], relay: ProgressRelay | None = None) -> T:
    """`fn()` on a worker thread. On cancellation the relay is told, and the thread is waited for (shielded)."""
    done = threading.Event()

    def work() -> T:
        try:
            return fn()
        finally:
            done.set()

    try:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        if relay is not None:
            relay.cancel()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(done.wait)
        raise


class StageProgress:
    """The quantize pipeline's `Progress` protocol over a relay: stage i of an open-ended list, 0..1 within it.

    Progress counts finished stages plus the fraction of the current one, so it only grows; the message names
    the stage and its count.
    """

    def __init__(self, relay: ProgressRelay) -> None:
        self._relay = relay
        self._stage = -1

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        self._stage += 1
        index = self._stage
        done = 0
        self._relay.post_from_thread(index, None, description, first=True)

        def advance(count: int) -> None:
            nonlocal done
            done += count
            fraction = min(1.0, done / total) if total else 0.0
            shown = f"{description} {done}/{total}" if total else description
            self._relay.post_from_thread(index + fraction, None, shown)

        return advance
