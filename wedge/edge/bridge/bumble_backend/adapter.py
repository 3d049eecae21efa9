"""One Bumble host on one HCI transport, shared by the bleak scanner and clients of the Bumble backend.

The transport is any Bumble spec: `tcp-client:127.0.0.1:PORT` for the virtual air, `usb:0` for a USB dongle
driven by Bumble where the OS has no Bluetooth stack, `serial:/dev/ttyACM0` for an HCI UART.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any, Final

from bleak.exc import BleakError
from bumble import hci
from bumble.device import Advertisement, Connection, Device
from bumble.transport import open_transport

from wedge.ble_spec import ATT_MTU_MAX, static_random_address
from wedge.errors import first_line

# The ATT MTU the central asks for: the largest a notification can use (Core Spec Vol 3, Part F, 3.2.8).
DEFAULT_REQUESTED_MTU: Final[int] = ATT_MTU_MAX

AdvertisementListener = Callable[[Advertisement], None]


class BumbleAdapter:
    """A Bumble host on `transport_spec`, opened on first use; `close` when done."""

    def __init__(self, transport_spec: str, *, name: str = "wedge-bridge",
                 requested_mtu: int = DEFAULT_REQUESTED_MTU) -> None:
        self.transport_spec = transport_spec
        self.name = name
        self.requested_mtu = requested_mtu
        self._transport: Any = None
        self._device: Device | None = None
        self._opening: asyncio.Lock | None = None
        self._connecting: asyncio.Lock | None = None
        self._listeners: dict[object, AdvertisementListener] = {}
        self._scanning = False

    async def device(self) -> Device:
        """The powered-on Bumble device, opening the transport the first time."""
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._device is None:
                try:
                    self._transport = await open_transport(self.transport_spec)
                except Exception as exc:
                    raise BleakError(f"no Bluetooth adapter at {self.transport_spec}: {first_line(exc)}") from exc
                # A fresh static random address each run, as a phone's privacy address would be.
                address = hci.Address(static_random_address(secrets.token_bytes(6)), hci.Address.RANDOM_DEVICE_ADDRESS)
                device = Device.with_hci(self.name, address, self._transport.source, self._transport.sink)
                device.on("advertisement", self._on_advertisement)
                try:
                    await device.power_on()
                except Exception as exc:
                    await self._transport.close()
                    self._transport = None
                    raise BleakError(f"the Bluetooth controller at {self.transport_spec} did not start: "
                                     f"{first_line(exc)}") from exc
                self._device = device
        return self._device

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._listeners.values()):
            listener(advertisement)

    async def add_listener(self, token: object, listener: AdvertisementListener) -> None:
        """Start delivering advertisements to `listener` (scanning while anyone listens)."""
        device = await self.device()
        self._listeners[token] = listener
        if not self._scanning:
            await device.start_scanning(active=True, filter_duplicates=False)
            self._scanning = True

    async def remove_listener(self, token: object) -> None:
        self._listeners.pop(token, None)
        if not self._listeners and self._scanning and self._device is not None:
            self._scanning = False
            with contextlib.suppress(Exception):
                await self._device.stop_scanning()

    async def connect(self, address: hci.Address | str, timeout_s: float) -> Connection:
        """An LE connection to `address` (a string is a random address unless it ends in /P); one connection
        attempt at a time, as a controller allows."""
        device = await self.device()
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            try:
                peer = address if isinstance(address, hci.Address) else hci.Address(
                    address, hci.Address.RANDOM_DEVICE_ADDRESS)
            except (ValueError, TypeError) as exc:
                raise BleakError(f"{address!r} is not a Bluetooth address: {first_line(exc)}") from exc
            try:
                return await device.connect(peer, timeout=timeout_s)
            except Exception as exc:
                raise BleakError(f"could not connect to {address}: {first_line(exc)}") from exc

    async def close(self) -> None:
        self._listeners.clear()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
        self._transport = None
        self._device = None
        self._scanning = False
