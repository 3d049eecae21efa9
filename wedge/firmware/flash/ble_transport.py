"""An SMP transport over BLE (Zephyr's SMP GATT service) through bleak, with pipelining, on any bleak backend.

smpclient's SMPBLETransport speaks the same service but builds its BleakScanner/BleakClient on the platform's
backend only (intercreate/smpclient issue 90: no backend option), and its receive() fails when two replies are
buffered, so requests cannot be pipelined; this one takes the bleak arguments it is given (`backend=` and its
options: the OS stack, or wedge's Bumble backend for the virtual air) and keeps a queue of whole replies.
Fragments and reassembly are firmware/protocol's smp_ble. A ring whose SMP service needs an encrypted link
(smp_bt.c with CONFIG_MCUMGR_TRANSPORT_BT_PERM_RW_ENCRYPT/_AUTHEN) is reached over its bond, encrypted while
connecting by the bleak backend (the OS stack, or wedge's Bumble backend with its keystore); without one the
subscription is refused with the ATT error and the flash stops there, naming how to pair.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from bleak import BleakClient, BleakGATTCharacteristic, BleakScanner
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from smpclient.transport import SMPTransportDisconnected

from wedge.errors import first_line
from wedge.firmware.errors import DeviceError
from wedge.firmware.flash.replies import ReplyQueue
from wedge.firmware.protocol.smp_ble import SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID, SmpReassembler

_ADDRESS: Final[re.Pattern[str]] = re.compile(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", re.IGNORECASE)
# The ATT minimum (23) less its 3-byte header, until the link says more.
_MIN_WRITE_BYTES: Final[int] = 20
_UNINITIALIZED_MESSAGE_BYTES: Final[int] = 384
# Advertising every 100 ms or so: a device that is on the air is found well within this.
SCAN_TIMEOUT_S: Final[float] = 10.0


class BleSmpTransport:
    """smpclient's SMPTransport protocol (and what DeviceSession adds) over bleak."""

    # One chunk in flight: a connection event carries the chunk, its reply and the next chunk's start, so a
    # second one adds little (the flash bench measures both) and a dropped link loses at most one chunk.
    default_window: int = 1

    def __init__(self, *, scanner_args: Mapping[str, Any] | None = None,
                 client_args: Mapping[str, Any] | None = None) -> None:
        self._scanner_args = dict(scanner_args or {})
        self._client_args = dict(client_args or {})
        self._client: BleakClient | None = None
        self._characteristic: BleakGATTCharacteristic | None = None
        self._replies = ReplyQueue("the BLE link is down")
        self._reassembler = SmpReassembler()
        self._buf_size: int | None = None
        self._write_bytes = _MIN_WRITE_BYTES
        self.address: str | None = None

    # -- SMPTransport -----------------------------------------------------------------------------------

    async def _find(self, address: str, timeout_s: float) -> Any:
        if _ADDRESS.fullmatch(address):
            return await BleakScanner.find_device_by_address(address, timeout=timeout_s, **self._scanner_args)
        return await BleakScanner.find_device_by_name(address, timeout=timeout_s, **self._scanner_args)

    async def connect(self, address: str, timeout_s: float) -> None:
        self.address = address
        try:
            device = await self._find(address, max(timeout_s, SCAN_TIMEOUT_S))
            if device is None:
                raise DeviceError(f"no BLE device {address} is advertising")
            client = BleakClient(device, disconnected_callback=self._on_disconnect, timeout=max(timeout_s, 5.0),
                                 **self._client_args)
            await client.connect()
        except BleakError as exc:
            raise DeviceError(f"cannot connect to BLE device {address}: {first_line(exc)}") from None
        characteristic = client.services.get_characteristic(SMP_CHARACTERISTIC_UUID)
        if characteristic is None:
            await client.disconnect()
            raise DeviceError(f"the BLE device {address} does not offer the SMP service ({SMP_SERVICE_UUID})")
        self._client, self._characteristic = client, characteristic
        self._replies.reset()
        self._reassembler = SmpReassembler()
        self._write_bytes = max(_MIN_WRITE_BYTES, characteristic.max_write_without_response_size)
        try:
            await client.start_notify(characteristic, self._on_notify)
        except BleakGATTProtocolError as exc:
            await self.disconnect()
            if exc.code == BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION:
                raise DeviceError(f"the BLE device {address} only takes SMP over a bonded, encrypted link this adapter "
                                  f"does not have with it (ATT Insufficient Authentication: no bond, or one made "
                                  f"without the passkey or number check the device needs): pair it with "
                                  f"`wedge pair {address}`") from None
            if exc.code == BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION:
                raise DeviceError(f"the BLE device {address} holds a bond with this adapter that the keystore in use "
                                  f"does not (ATT Insufficient Encryption): erase the bond on the device, then "
                                  f"`wedge pair {address}`") from None
            raise DeviceError(f"the BLE device {address} refused SMP notifications: {first_line(exc)}") from None
        except BleakError as exc:
            await self.disconnect()
            raise DeviceError(f"the BLE device {address} refused SMP notifications: {first_line(exc)}") from None

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except BleakError:
                pass

    async def send(self, data: bytes) -> None:
        self._replies.expect(data)
        await self.send_pipelined(data)

    async def receive(self) -> bytes:
        return await self._replies.next(only_sequence=self._replies.sequence)

    async def send_and_receive(self, data: bytes) -> bytes:
        await self.send(data)
        return await self.receive()

    def initialize(self, smp_server_transport_buffer_size: int) -> None:
        self._buf_size = smp_server_transport_buffer_size

    @property
    def mtu(self) -> int:
        return self._write_bytes

    @property
    def max_unencoded_size(self) -> int:
        # Over BLE an SMP message fills the server's netbuf (no serial framing around it), cut down to whole
        # fragments: a last fragment of a few bytes would cost a packet of its own.
        size = self._buf_size or _UNINITIALIZED_MESSAGE_BYTES
        whole = size // self._write_bytes * self._write_bytes
        return whole if whole >= self._write_bytes else size

    # -- what DeviceSession adds -------------------------------------------------------------------------

    async def send_pipelined(self, data: bytes) -> None:
        client, characteristic = self._client, self._characteristic
        if client is None or characteristic is None:
            raise SMPTransportDisconnected("the BLE link is down")
        self._replies.check()
        try:
            for start in range(0, len(data), self._write_bytes):
                await client.write_gatt_char(characteristic, data[start : start + self._write_bytes], response=False)
        except BleakError as exc:
            raise SMPTransportDisconnected(f"writing to {self.address} failed: {first_line(exc)}") from exc

    async def receive_any(self) -> bytes:
        return await self._replies.next(only_sequence=None)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._replies.lost is None

    def clear_console(self) -> None:
        """BLE carries no console: a booting board is seen by its advertising and an answered echo."""

    def console_text(self) -> bytes:
        return b""

    async def wait_console(self, marker: bytes, timeout_s: float) -> bool:
        await asyncio.sleep(min(timeout_s, 0.2))  # nothing to wait on: pace the echo probes instead
        return False

    async def address_present(self, timeout_s: float) -> bool:
        """Whether the device advertises within `timeout_s` (a board that died stays off the air)."""
        if self.address is None:
            return True
        deadline = time.monotonic() + timeout_s
        try:
            return await self._find(self.address, max(0.5, deadline - time.monotonic())) is not None
        except BleakError:
            return False

    # -- callbacks --------------------------------------------------------------------------------------

    def _on_notify(self, _sender: Any, data: bytearray) -> None:
        for message in self._reassembler.feed(bytes(data)):
            self._replies.put(message)

    def _on_disconnect(self, _client: BleakClient) -> None:
        if self._client is None:
            return
        self._replies.lose(f"the BLE link to {self.address} dropped")
