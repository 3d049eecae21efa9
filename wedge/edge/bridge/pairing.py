"""Pairing a device with this bridge's adapter on purpose, and forgetting it: what `wedge pair` / `wedge unpair` do.

On wedge's Bumble backend the bond lands in the adapter's keystore. A bond both sides still hold is kept (the
link is encrypted with it, nothing is paired again); a bond the device lost is replaced by a new pairing, which
is how such a device is recovered. On the OS stack bleak asks the OS to pair (BlueZ through its agent,
Windows through its pairing dialog; macOS pairs by itself on first access) and the OS keeps the bond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bleak import BleakClient
from bleak.exc import BleakError

from wedge.edge.bridge.discovery import BleStack, DeviceSelector, find_device
from wedge.edge.bridge.errors import BondLost, BridgeError, PairingFailed
from wedge.errors import first_line
from wedge.firmware.protocol import gatt_uuids as ids


@dataclass(frozen=True)
class PairingResult:
    """Who was paired, and how (`method` None: the OS paired and did not say)."""

    name: str | None
    address: str
    method: str | None
    authenticated: bool | None
    summary: str
    keystore: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "method": self.method,
                "authenticated": self.authenticated, "summary": self.summary, "keystore": self.keystore}


async def pair_device(selector: DeviceSelector, stack: BleStack, *, scan_timeout_s: float = 10.0,
                      connect_timeout_s: float = 60.0) -> PairingResult:
    """Find the device, pair and bond with it (replacing a bond this adapter had), check the link, disconnect."""
    found = await find_device(selector, stack, scan_timeout_s)
    if found is None:
        raise BridgeError(f"no device matching {selector.describe()} advertised within {scan_timeout_s:g} s")
    adapter = stack.adapter
    try:
        client = await _connect_paired(found.device, stack, connect_timeout_s)
    except BondLost:
        assert adapter is not None  # only the Bumble backend tells a lost bond
        await adapter.forget(found.device.address)
        client = await _connect_paired(found.device, stack, connect_timeout_s)
    try:
        security = adapter.latest if adapter is not None else None
        if adapter is None:
            await _touch_protected(client)
    finally:
        await client.disconnect()
    if security is None:
        return PairingResult(found.device.name, found.device.address, None, None,
                             f"paired by {stack.label} (the OS chose the method)", None)
    keystore = str(adapter.bonds.path) if adapter.bonds.path is not None else None
    summary = security.method_in_words() if security.paired_now else \
        "already paired: the bond both sides hold still works (the link was encrypted with it, nothing re-paired)"
    return PairingResult(found.device.name, security.peer, security.method, security.authenticated, summary, keystore)


async def _touch_protected(client: BleakClient) -> None:
    """Read the wedge stream's status (encrypted-only): CoreBluetooth has no pairing call and pairs on the first
    access the device refuses, so this is what makes macOS pair now. A failure here is the OS's to report."""
    if client.services.get_characteristic(ids.WEDGE_STATUS) is None:
        return
    try:
        await client.read_gatt_char(ids.WEDGE_STATUS)
    except BleakError as exc:
        raise PairingFailed(f"{client.address} refused the encrypted read after pairing: {first_line(exc)} "
                            f"(the OS did not pair: check its Bluetooth agent or settings)") from None


async def _connect_paired(device: Any, stack: BleStack, timeout_s: float) -> BleakClient:
    # The timeout covers a person reading a passkey off the device and typing it.
    client = BleakClient(device, pair=True, timeout=timeout_s, **stack.client_args)
    try:
        await client.connect()
    except BleakError as exc:
        raise PairingFailed(f"pairing with {device.name or device.address} failed: {first_line(exc)}") from None
    return client


async def unpair_device(name_or_address: str, stack: BleStack, *, scan_timeout_s: float = 10.0) -> list[str]:
    """Forget the bond(s) with the device(s) of this name or address; the addresses forgotten.

    On the Bumble backend only the keystore changes (no radio needed); on the OS stack the device is found and
    bleak asks the OS to remove it.
    """
    adapter = stack.adapter
    if adapter is not None:
        bonds = adapter.bonds.find(name_or_address)
        if not bonds:
            where = adapter.bonds.path or "this adapter's keystore"
            known = ", ".join(f"{b.name or '?'} ({b.address})" for b in adapter.bonds.bonds()) or "none"
            raise BridgeError(f"no bond with {name_or_address!r} in {where} (bonds: {known})")
        for bond in bonds:
            await adapter.forget(bond.address)
        return [bond.address for bond in bonds]
    selector = (DeviceSelector(address=name_or_address) if ":" in name_or_address
                else DeviceSelector(name=name_or_address))
    found = await find_device(selector, stack, scan_timeout_s)
    if found is None:
        raise BridgeError(f"no device matching {selector.describe()} advertised within {scan_timeout_s:g} s")
    client = BleakClient(found.device, **stack.client_args)
    try:
        await client.unpair()
    except (BleakError, NotImplementedError) as exc:
        raise BridgeError(f"{stack.label} cannot remove the bond with {name_or_address}: {first_line(exc)} "
                          f"(remove it in the system's Bluetooth settings)") from None
    return [found.device.address]
