"""An smpclient transport for a serial port named by path or pyserial URL, event-driven and with clear port errors.

smpclient's own serial transport opens only device paths, retries a failed open silently until its timeout
and polls for input every 5 ms; this one opens any `serial_for_url` address once (exclusively, so a busy port
says so), reads in pyserial's ReaderThread, and keeps console text apart for the boot banner.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Final

import serial
from serial.threaded import Protocol, ReaderThread
from smpclient.transport import SMPTransportDisconnected

from wedge.firmware.errors import DeviceError
from wedge.firmware.flash.replies import ReplyQueue
from wedge.firmware.protocol.smp_messages import max_message_bytes
from wedge.firmware.protocol.smp_serial import LINE_LENGTH_BYTES, Console, Frame, SerialFrameReader, encode_frame
from wedge.firmware.serial_port import is_url, open_failure, open_serial

# Before the server's buffer size is known: one 128-byte line's worth, enough for any small request.
_UNINITIALIZED_MESSAGE_BYTES: Final[int] = 90
# How often to look for a port path that is not there yet: no OS event announces a new device file here.
_PORT_POLL_S: Final[float] = 0.05
_CONSOLE_KEEP_BYTES: Final[int] = 8192


async def wait_for_port(address: str, timeout_s: float) -> bool:
    """Wait until a port path exists (URLs are taken to exist); False on timeout."""
    if is_url(address):
        return True
    deadline = time.monotonic() + timeout_s
    while not Path(address).exists():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_PORT_POLL_S)
    return True


class _Bridge(Protocol):
    """ReaderThread callbacks, handed to the event loop."""

    def __init__(self, owner: SerialPortTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self._loop = loop

    def data_received(self, data: bytes) -> None:
        self._loop.call_soon_threadsafe(self._owner._on_data, data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._owner._on_lost, exc)


class SerialPortTransport:
    """smpclient's SMPTransport protocol over a pyserial port."""

    # Two chunks in flight keep the line busy while a reply travels back (Zephyr's UART has two RX buffers).
    default_window: int = 2

    def __init__(self, *, baud: int = 115_200, write_timeout_s: float = 5.0) -> None:
        self._baud = baud
        self._write_timeout_s = write_timeout_s
        self._smp_server_transport_buffer_size: int | None = None
        self._port: serial.SerialBase | None = None
        self._reader_thread: ReaderThread | None = None
        self._replies = ReplyQueue("the port is closed")
        self._reader = SerialFrameReader()
        self._console = bytearray()
        self._console_event = asyncio.Event()
        self.address: str | None = None

    # -- SMPTransport ----------------------------------------------------------------------------------

    async def connect(self, address: str, timeout_s: float) -> None:
        """Open `address` (a path or URL), waiting up to `timeout_s` for a path to appear."""
        self.address = address
        if not await wait_for_port(address, timeout_s):
            raise DeviceError(f"serial port {address} does not exist")
        try:
            port = open_serial(address, self._baud, timeout_s=None, write_timeout_s=self._write_timeout_s)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DeviceError(open_failure(address, exc)) from exc
        port.reset_input_buffer()
        self._port = port
        self._replies.reset()
        self._reader = SerialFrameReader()
        loop = asyncio.get_running_loop()
        self._reader_thread = ReaderThread(port, lambda: _Bridge(self, loop))
        self._reader_thread.start()

    async def disconnect(self) -> None:
        thread, port = self._reader_thread, self._port
        self._reader_thread = self._port = None
        if thread is not None:
            await asyncio.to_thread(thread.stop)
        if port is not None:
            port.close()

    async def send(self, data: bytes) -> None:
        if len(data) > self.max_unencoded_size:
            raise ValueError(f"an SMP message of {len(data)} bytes exceeds the server's {self.max_unencoded_size}")
        if self._port is None:
            raise SMPTransportDisconnected("the port is closed")
        self._replies.check()
        # Only the reply to this request counts: earlier replies (to requests that timed out) are stale.
        self._replies.expect(data)
        await self.send_pipelined(data)

    async def receive(self) -> bytes:
        return await self._replies.next(only_sequence=self._replies.sequence)

    async def send_pipelined(self, data: bytes) -> None:
        """Send a request without waiting for earlier replies (they stay queued for `receive_any`)."""
        port = self._port
        if port is None:
            raise SMPTransportDisconnected("the port is closed")
        self._replies.check()
        try:
            port.write(encode_frame(data, LINE_LENGTH_BYTES))
        except serial.SerialTimeoutException as exc:
            raise SMPTransportDisconnected(f"writing to {self.address} timed out: the device does not read") from exc
        except (serial.SerialException, OSError) as exc:
            raise SMPTransportDisconnected(f"writing to {self.address} failed: {exc}") from exc

    async def receive_any(self) -> bytes:
        """The next response frame, whatever request it answers."""
        return await self._replies.next(only_sequence=None)

    async def send_and_receive(self, data: bytes) -> bytes:
        await self.send(data)
        return await self.receive()

    def initialize(self, smp_server_transport_buffer_size: int) -> None:
        self._smp_server_transport_buffer_size = smp_server_transport_buffer_size
        self._reader = SerialFrameReader(max_message_bytes=max(smp_server_transport_buffer_size, 1024))

    @property
    def mtu(self) -> int:
        return self._smp_server_transport_buffer_size or LINE_LENGTH_BYTES

    @property
    def max_unencoded_size(self) -> int:
        if self._smp_server_transport_buffer_size is None:
            return _UNINITIALIZED_MESSAGE_BYTES
        return max_message_bytes(self._smp_server_transport_buffer_size)

    # -- beyond SMP ------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._port is not None and self._replies.lost is None

    async def address_present(self, timeout_s: float) -> bool:
        """Whether the port (path) is there, waiting up to `timeout_s` for it to come back."""
        return await wait_for_port(self.address or "", timeout_s) if self.address else True

    def clear_console(self) -> None:
        self._console.clear()
        self._console_event.clear()

    def console_text(self) -> bytes:
        return bytes(self._console)

    async def wait_console(self, marker: bytes, timeout_s: float) -> bool:
        """Wait until `marker` appears in the console text since `clear_console`; False on timeout or link loss."""
        deadline = time.monotonic() + timeout_s
        while marker not in self._console:
            left = deadline - time.monotonic()
            if left <= 0 or self._replies.lost is not None:
                return False
            self._console_event.clear()
            try:
                await asyncio.wait_for(self._console_event.wait(), left)
            except TimeoutError:
                return False
        return True

    def _on_data(self, data: bytes) -> None:
        for event in self._reader.feed(data):
            if isinstance(event, Frame):
                self._replies.put(event.message)
            elif isinstance(event, Console):
                self._console += event.text
                del self._console[:-_CONSOLE_KEEP_BYTES]
                self._console_event.set()

    def _on_lost(self, exc: BaseException | None) -> None:
        if self._port is None:
            return  # we closed it ourselves
        self._replies.lose(f"the device on {self.address} went away ({exc or 'port closed'})")
        self._console_event.set()
