"""The bleak client of the Bumble backend: GATT over a Bumble LE connection, behind bleak's BaseBleakClient.

Pass it to `BleakClient(address_or_device, backend=BleakClientBumble, bumble={"adapter": adapter})`; a BLEDevice
found by the Bumble scanner already carries its adapter. While connecting, a bonded device's link is encrypted
with its stored keys, and with bleak's `pair=True` an unbonded one is paired (Bumble's SMP, LE Secure Connections);
then the ATT MTU is negotiated. An attribute the device refuses raises bleak's BleakGATTProtocolError with the ATT
error code (Insufficient Authentication 0x05, Insufficient Encryption 0x0F, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import hci
from bumble.att import ATT_DEFAULT_MTU, ATT_Error
from bumble.device import Connection, Peer
from bumble.gatt_client import CharacteristicProxy

from wedge.ble_spec import notification_payload_bytes
from wedge.edge.bridge.bumble_backend.scanner import BumbleArgs, BumbleDetails, require_adapter
from wedge.edge.bridge.errors import LinkSecurityError
from wedge.errors import first_line

logger = logging.getLogger(__name__)


def _uuid(value: Any) -> str:
    return normalize_uuid_str(value.to_hex_str("-"))


def _property_names(properties: int) -> list[Any]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


class BumbleGATTProtocolError(BleakGATTProtocolError):
    """An ATT error response, with what was being done when it came."""

    def __init__(self, error_code: int, context: str) -> None:
        super().__init__(error_code)
        self.context = context

    def __str__(self) -> str:
        return f"{self.context}: {self.args[1]} (ATT error 0x{int(self.args[0]):02X})"


def _failure(exc: Exception, context: str) -> BleakError:
    if isinstance(exc, ATT_Error):
        return BumbleGATTProtocolError(int(exc.error_code), context)
    return BleakError(f"{context} failed: {first_line(exc)}")


class BleakClientBumble(BaseBleakClient):
    """A GATT client on one LE connection of a BumbleAdapter."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        bumble: BumbleArgs | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        details = address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        self._adapter = require_adapter(bumble, details)
        self._target: hci.Address | str = details.address if isinstance(details, BumbleDetails) else self.address
        self._name = address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._proxies: dict[int, CharacteristicProxy[bytes]] = {}
        self._closing = False

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        timeout_s = float(kwargs.get("timeout", self._timeout))
        connection = await self._adapter.connect(self._target, timeout_s)
        self._connection = connection
        self._closing = False
        connection.on("disconnection", self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            # Before anything is read: a bonded link is encrypted at once, as phones do with a bonded device.
            # A person may be typing a passkey meanwhile, so this step has the SMP timeout, not the connect one.
            await self._adapter.secure(connection, pair=pair, name=self._name)
        except (LinkSecurityError, asyncio.CancelledError):
            await self._drop()
            raise
        except Exception as exc:  # the link went down meanwhile, a controller error: worth another attempt
            await self._drop()
            raise BleakError(f"{self.address}: securing the link failed: {first_line(exc)}") from exc
        try:
            async with asyncio.timeout(timeout_s):
                await self._negotiate_mtu(peer)
                self.services = await self._discover(peer)
        except Exception as exc:
            await self._drop()
            raise BleakError(f"{self.address}: service discovery failed: {first_line(exc)}") from exc

    async def _negotiate_mtu(self, peer: Peer) -> None:
        # A peripheral that rejects the exchange stays at the default 23 bytes (every notification still
        # fits, records are fragmented): that is the fallback, not an error.
        with contextlib.suppress(Exception):
            await peer.request_mtu(self._adapter.requested_mtu)

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        self._proxies.clear()
        for service in await peer.discover_services():
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in await service.discover_characteristics():
                self._proxies[characteristic.handle] = characteristic
                bleak_char = BleakGATTCharacteristic(
                    characteristic, characteristic.handle, _uuid(characteristic.uuid),
                    _property_names(int(characteristic.properties)),
                    lambda: notification_payload_bytes(self.mtu_size), bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in await characteristic.discover_descriptors():
                    collection.add_descriptor(BleakGATTDescriptor(
                        descriptor, descriptor.handle, _uuid(descriptor.type), bleak_char))
        return collection

    def _on_disconnection(self, _reason: int) -> None:
        was_closing = self._closing
        self._connection = None
        self._peer = None
        if not was_closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _drop(self) -> None:
        connection = self._connection
        self._closing = True
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()
        self._connection = None
        self._peer = None

    async def disconnect(self) -> None:
        await self._drop()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond on the open connection (a bonded device is encrypted with its keys instead)."""
        connection = self._connection
        if connection is None:
            raise BleakError(f"{self.address}: not connected")
        await self._adapter.secure(connection, pair=True, name=self._name)

    async def unpair(self) -> None:
        """Forget the bond in the adapter's keystore and disconnect (bleak's semantics)."""
        address = str(self._connection.peer_address) if self._connection is not None else self.address
        await self._drop()
        await self._adapter.forget(address)

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        try:
            return bytearray(await peer.read_value(characteristic.handle))
        except Exception as exc:
            raise _failure(exc, f"{self.address}: reading {characteristic.uuid}") from exc

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        try:
            return bytearray(await peer.read_value(descriptor.handle))
        except Exception as exc:
            raise _failure(exc, f"{self.address}: reading descriptor {descriptor.handle}") from exc

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer,
                              response: bool) -> None:
        peer = self._require_peer()
        try:
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)
        except Exception as exc:
            raise _failure(exc, f"{self.address}: writing {characteristic.uuid}") from exc

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._require_peer()
        try:
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)
        except Exception as exc:
            raise _failure(exc, f"{self.address}: writing descriptor {descriptor.handle}") from exc

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        peer = self._require_peer()
        proxy = self._proxies.get(characteristic.handle)
        if proxy is None:
            raise BleakError(f"{self.address}: characteristic {characteristic.uuid} was not discovered")
        try:
            await peer.subscribe(proxy, lambda value: callback(bytearray(value)))
        except Exception as exc:
            raise _failure(exc, f"{self.address}: subscribing to {characteristic.uuid}") from exc

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        proxy = self._proxies.get(characteristic.handle)
        if proxy is None:
            raise BleakError(f"{self.address}: characteristic {characteristic.uuid} was not discovered")
        with contextlib.suppress(Exception):
            await peer.unsubscribe(proxy)
