"""One Bumble host on one HCI transport, shared by the bleak scanner and clients of the Bumble backend.

The transport is any Bumble spec: `tcp-client:127.0.0.1:PORT` for the virtual air, `usb:0` for a USB dongle
driven by Bumble where the OS has no Bluetooth stack, `serial:/dev/ttyACM0` for an HCI UART. Its bonds live in
one keystore file per adapter (`default_keystore_path`), with the adapter's own identity: the same static address
and IRK every run, so bonded devices recognise it, and the IRKs that resolve their private addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bleak.exc import BleakError
from bumble import hci
from bumble.device import Advertisement, Connection, Device
from bumble.pairing import PairingConfig
from bumble.transport import open_transport

from wedge.ble_bonds import BondStore
from wedge.ble_spec import ATT_MTU_MAX
from wedge.edge.bridge.bumble_backend.security import (
    CentralDelegate,
    LinkSecurity,
    NoPrompts,
    PairingPrompts,
    pairing_config,
    secure,
)
from wedge.errors import first_line

# The ATT MTU the central asks for: the largest a notification can use (Core Spec Vol 3, Part F, 3.2.8).
DEFAULT_REQUESTED_MTU: Final[int] = ATT_MTU_MAX

AdvertisementListener = Callable[[Advertisement], None]
KEYSTORE_FOLDER: Final[str] = "bluetooth"


def default_keystore_path(transport_spec: str) -> Path:
    """Where an adapter's bonds are kept: one file per transport spec in the user's state folder
    ($XDG_STATE_HOME/wedge/bluetooth, ~/.local/state/wedge/bluetooth without it)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", transport_spec).strip("-") or "adapter"
    return base / "wedge" / KEYSTORE_FOLDER / f"{slug}.json"


class BumbleAdapter:
    """A Bumble host on `transport_spec`, opened on first use; `close` when done.

    keystore: the adapter's keystore file (None: bonds live in memory and end with the process);
    prompts: who answers passkey entry and numeric comparison while pairing (default: nobody, Just Works only).
    """

    def __init__(self, transport_spec: str, *, name: str = "wedge-bridge",
                 requested_mtu: int = DEFAULT_REQUESTED_MTU, keystore: Path | None = None,
                 prompts: PairingPrompts | None = None) -> None:
        self.transport_spec = transport_spec
        self.name = name
        self.requested_mtu = requested_mtu
        self.bonds = BondStore(keystore)
        self.prompts: PairingPrompts = prompts or NoPrompts()
        self._delegates: dict[Connection, CentralDelegate] = {}
        self.security: dict[str, LinkSecurity] = {}  # identity address -> how its last connection was secured
        self.latest: LinkSecurity | None = None
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
                # The adapter's identity from its keystore: bonded devices know it by this address.
                address = hci.Address(self.bonds.identity.address, hci.Address.RANDOM_DEVICE_ADDRESS)
                device = Device.with_hci(self.name, address, self._transport.source, self._transport.sink)
                device.keystore = self.bonds
                device.irk = self.bonds.identity.irk
                device.pairing_config_factory = self._pairing_config
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

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        delegate = self._delegates.get(connection) or CentralDelegate(str(connection.peer_address), self.prompts)
        return pairing_config(delegate)

    def resolve(self, address: hci.Address) -> hci.Address | None:
        """The identity address behind a resolvable private address of a bonded device (None: not ours)."""
        resolver = self._device.address_resolver if self._device is not None else None
        if resolver is None or not address.is_resolvable:
            return None
        return resolver.resolve(address)

    async def secure(self, connection: Connection, *, pair: bool, name: str | None = None) -> LinkSecurity:
        """Encrypt with the stored bond, or pair and bond when `pair` (BondLost, PairingFailed: bridge errors)."""
        device = await self.device()
        identity = str(connection.peer_address)
        label = f"{name or identity} ({identity})"
        delegate = CentralDelegate(label, self.prompts) if pair else None
        if delegate is not None:
            self._delegates[connection] = delegate
        try:
            result = await secure(device, connection, self.bonds, delegate, label)
        finally:
            self._delegates.pop(connection, None)
        self.bonds.label(result.peer, name)
        self.security[result.peer] = self.latest = result
        return result

    async def forget(self, address: str) -> bool:
        """Drop the bond with `address` from the keystore (its private addresses no longer resolve)."""
        forgotten = self.bonds.forget(address)
        if forgotten and self._device is not None:
            await self._device.refresh_resolving_list()
        return forgotten

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
                # Bumble scans for a bonded device's private address first, without a timeout of its own.
                async with asyncio.timeout(timeout_s):
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
