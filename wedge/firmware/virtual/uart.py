"""The virtual board's UART: a pty whose slave is the port a host opens, optionally paced to a baud rate.

One thread owns the pty: it reads what the host writes, applies the link faults, and hands the bytes to the
board's event loop when they would have arrived at 10 bits per byte (8N1); it writes the board's output at
the same rate. A cut closes the pty (the host sees the port vanish) and opens a new one after a while,
re-pointing the optional symlink so the port keeps one stable name.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Final

from wedge.firmware.errors import VirtualBoardError
from wedge.firmware.virtual.faults import LinkFaults

BITS_PER_BYTE: Final[int] = 10  # 8N1: start bit, 8 data bits, stop bit
# Received bytes reach the board in slices no longer than this (or 64 bytes), so framing is decoded while
# the rest of a frame is still on the wire, as a UART driver's interrupt would deliver it.
_SLICE_S: Final[float] = 0.001
_READ_BYTES: Final[int] = 65536


class PtyUart:
    """A pty serial port for a virtual board; callbacks run in the board's event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_rx: Callable[[bytes], None],
        on_port: Callable[[str], None],
        faults: LinkFaults,
        *,
        baud: int | None = None,
        link: Path | None = None,
    ) -> None:
        if baud is not None and baud <= 0:
            raise VirtualBoardError(f"the baud rate must be positive, got {baud}")
        self._loop = loop
        self._on_rx = on_rx
        self._on_port = on_port
        self._faults = faults
        self._byte_s = BITS_PER_BYTE / baud if baud else 0.0
        self._slice_bytes = max(64, int(_SLICE_S / self._byte_s)) if baud else _READ_BYTES
        self._link = link
        self._lock = threading.Lock()
        self._tx: collections.deque[bytes] = collections.deque()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._master: int | None = None
        self._slave: int | None = None
        self.path: str | None = None
        self._stopping = False
        self._cut_requested = False
        self._thread = threading.Thread(target=self._run, name="virtual-uart", daemon=True)

    # -- called from the event loop ------------------------------------------------------------------------

    def start(self) -> str:
        """Open the pty (and link) and start the I/O thread; returns the port path."""
        if self._link is not None and self._link.exists() and not self._link.is_symlink():
            raise VirtualBoardError(f"--link {self._link} exists and is not a symlink: refusing to replace it")
        self._open_pty()
        self._thread.start()
        assert self.path is not None
        return self.path

    def send(self, data: bytes) -> None:
        """Queue bytes for the host; they leave at the line rate. Dropped while the port is cut."""
        with self._lock:
            self._tx.append(data)
        self._wake()

    async def drain(self) -> None:
        """Wait until everything queued has been written to the port (or dropped by a cut)."""
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            self._drain_waiters.append(future)
        self._wake()
        await future

    def cut(self) -> None:
        """Pull the cable now: the port vanishes and returns after the faults' cut_down_s."""
        with self._lock:
            self._cut_requested = True
        self._wake()

    def close(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    # -- the I/O thread -------------------------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        fcntl.fcntl(master, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        fcntl.fcntl(slave, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        # The board keeps the slave open itself: with no slave open, reading the master fails with EIO, and a
        # host closing its port must not look like the board losing its UART.
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self._link is not None:
            tmp = self._link.with_name(f".{self._link.name}.{os.getpid()}")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(self.path, tmp)
            os.replace(tmp, self._link)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self._link is not None and self._link.is_symlink():
            self._link.unlink()

    def _run(self) -> None:
        rx: collections.deque[tuple[float, bytes]] = collections.deque()
        rx_free = tx_free = 0.0
        tx_due: float | None = None
        tx_data = b""
        reopen_at: float | None = None
        while not self._stopping:
            now = time.monotonic()
            while rx and rx[0][0] <= now:
                self._loop.call_soon_threadsafe(self._on_rx, rx.popleft()[1])
            if self._cut_requested:
                self._cut_requested = False
                rx.clear()
                tx_data, tx_due = b"", None
                self._close_pty()
                reopen_at = now + self._faults.cut_down_s
            if reopen_at is not None and now >= reopen_at:
                reopen_at = None
                self._open_pty()
                self._loop.call_soon_threadsafe(self._on_port, self.path)
            if tx_due is None:
                with self._lock:
                    chunk = self._tx.popleft() if self._tx else b""
                if chunk:
                    tx_free = max(tx_free, now) + len(chunk) * self._byte_s
                    tx_data, tx_due = chunk, tx_free
                else:
                    self._release_drain_waiters()
            if tx_due is not None and now >= tx_due:
                self._write(tx_data)
                tx_data, tx_due = b"", None
                continue
            deadlines = [t for t in (rx[0][0] if rx else None, tx_due, reopen_at) if t is not None]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            watched = [self._wake_r] + ([self._master] if self._master is not None else [])
            readable, _, _ = select.select(watched, [], [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            if self._master is not None and self._master in readable:
                rx_free = self._receive(rx, rx_free)
        self._release_drain_waiters(force=True)

    def _receive(self, rx: collections.deque[tuple[float, bytes]], rx_free: float) -> float:
        assert self._master is not None
        try:
            data = os.read(self._master, _READ_BYTES)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return rx_free
            raise
        verdict = self._faults.on_rx(data)
        now = time.monotonic()
        data = verdict.data
        # Each byte arrives one byte-time after the previous one; the board sees a slice when its last byte is in.
        for start in range(0, len(data), self._slice_bytes):
            piece = data[start : start + self._slice_bytes]
            rx_free = max(rx_free, now) + len(piece) * self._byte_s
            rx.append((rx_free, piece))
        if verdict.cut:
            self._cut_requested = True
        return rx_free

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return  # the cable is out: the bytes go nowhere
        try:
            os.write(self._master, data)
        except OSError as exc:
            # A full pty buffer means nobody reads the port; a UART without flow control loses the bytes.
            if exc.errno not in (errno.EAGAIN, errno.EIO):
                raise

    def _release_drain_waiters(self, force: bool = False) -> None:
        with self._lock:
            if self._tx and not force:
                return
            waiters, self._drain_waiters = self._drain_waiters, []
        for future in waiters:
            self._loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
